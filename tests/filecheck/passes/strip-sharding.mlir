// RUN: tracec-opt %s -p strip-sharding | filecheck %s

// Shardy ops and sharding attributes go; everything else stays, locations included.
module @m attributes {mhlo.num_partitions = 1 : i32} {
  "sdy.mesh"() <{sym_name = "mesh"}> : () -> ()
  func.func public @main(%arg0: tensor<4xf32> {mhlo.sharding = "{replicated}", sdy.sharding = "mesh, [{}]"}) -> (tensor<4xf32> {jax.result_info = "out"}) {
    %0 = stablehlo.add %arg0, %arg0 {mhlo.sharding = "{replicated}"} : tensor<4xf32> loc("model.py":3:4)
    return %0 : tensor<4xf32>
  }
}

// CHECK-NOT: sdy.
// CHECK-NOT: mhlo.sharding
// CHECK: "func.func"() <{arg_attrs = [{}], {{.*}}res_attrs = [{jax.result_info = "out"}]
// CHECK: "stablehlo.add"(%{{.*}}, %{{.*}}) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("model.py":3:4)
