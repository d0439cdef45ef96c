// RUN: tracec-opt %S/Inputs/scan.mlir -p lower-scan-to-iree | filecheck %s
// RUN: tracec-opt %S/Inputs/scan.mlir -p 'lower-scan-to-iree{unroll=2}' | filecheck %s --check-prefix=UNROLL
// RUN: tracec-opt %S/Inputs/scan.mlir -p 'lower-scan-to-iree{unroll=2 fuse-steps=false}' | filecheck %s --check-prefix=BARRIER
// RUN: tracec-opt %S/Inputs/scan-counter.mlir -p 'lower-scan-to-iree{unroll=2}' | filecheck %s --check-prefix=HOST
// RUN: tracec-opt %S/Inputs/scan-host-scalars.mlir -p lower-scan-to-iree | filecheck %s --check-prefix=SCALARS
// RUN: tracec-opt %S/Inputs/scan-quiet.mlir -p 'lower-scan-to-iree{unroll=2 quiet-windows=true}' | filecheck %s --check-prefix=QUIET
// RUN: tracec-opt %S/Inputs/scan-quiet.mlir -p 'lower-scan-to-iree{unroll=2}' | filecheck %s --check-prefix=NOQUIET

// Loop values cross the scf.for edge as !hal.buffer_view (no tensor carried, so IREE
// copies nothing per iteration); rows are extracted/inserted in place.
// CHECK: ^bb0(%[[W:.*]]: tensor<2x3xf32>{{.*}}, %[[V0:.*]]: tensor<4x3xf32>{{.*}}, %[[XS:.*]]: tensor<?x4x2xf32>
// CHECK: %[[C0:.*]] = "arith.constant"() <{value = 0 : index}>
// CHECK: %[[T:.*]] = "tensor.dim"(%[[XS]], %{{.*}}) : (tensor<?x4x2xf32>, index) -> index
// CHECK: %[[VB:.*]] = "hal.tensor.export"(%[[V0]]) <{source_encoding = tensor<4x3xf32>}>
// CHECK: %[[E:.*]] = "tensor.empty"(%[[T]]) : (index) -> tensor<?x4x3xf32>
// CHECK: %[[YB:.*]] = "hal.tensor.export"(%[[E]], %[[T]])
// CHECK: %[[C1:.*]] = "arith.constant"() <{value = 1 : index}>
// CHECK: "scf.for"(%[[C0]], %[[T]], %[[C1]], %[[VB]], %[[YB]]) ({
// CHECK: ^bb{{[0-9]+}}(%[[IV:.*]]: index{{.*}}, %[[A:.*]]: !hal.buffer_view{{.*}}, %[[B:.*]]: !hal.buffer_view
// CHECK: %[[V:.*]] = "hal.tensor.import"(%[[A]]) <{operandSegmentSizes = array<i32: 1, 0, 0, 0>, target_encoding = tensor<4x3xf32>}>
// CHECK: %[[BUF:.*]] = "hal.tensor.import"(%[[B]], %[[T]])
// CHECK: %[[X:.*]] = "tensor.extract_slice"(%[[XS]], %[[IV]]) {{.*}}static_sizes = array<i64: 1, 4, 2>{{.*}} -> tensor<4x2xf32>
// CHECK: "stablehlo.dot_general"(%[[X]], %[[W]]) {{.*}} loc("model.py":5:8)
// CHECK: %[[N:.*]] = "stablehlo.add"(%[[V]], {{.*}} loc("model.py":6:8)
// CHECK: %[[INS:.*]] = "tensor.insert_slice"(%[[N]], %[[BUF]], %[[IV]])
// CHECK: "hal.tensor.export"(%[[N]])
// CHECK: "hal.tensor.export"(%[[INS]], %[[T]])
// CHECK: "scf.yield"
// CHECK-NOT: scf.for
// CHECK-NOT: tracec.scan

// unroll=2: T - T mod 2 steps two per iteration (rows i and i+1, buffers imported and
// exported once per iteration), then the remaining step in a loop of step 1.
// UNROLL: %[[T:.*]] = "tensor.dim"
// UNROLL: %[[TWO:.*]] = "arith.constant"() <{value = 2 : index}>
// UNROLL: %[[REST:.*]] = "arith.remui"(%[[T]], %[[TWO]])
// UNROLL: %[[MAIN:.*]] = "arith.subi"(%[[T]], %[[REST]])
// UNROLL: %[[V1:[0-9]+]], %[[Y1:[0-9]+]] = "scf.for"(%{{.*}}, %[[MAIN]], %{{.*}}, %{{.*}}, %{{.*}}) ({
// UNROLL: ^bb{{[0-9]+}}(%[[IV:[0-9]+]]: index
// UNROLL: "tensor.extract_slice"(%{{.*}}, %[[IV]])
// UNROLL: %[[N1:.*]] = "stablehlo.add"
// UNROLL: "tensor.insert_slice"(%[[N1]], %{{.*}}, %[[IV]])
// UNROLL: %[[IV1:.*]] = "arith.addi"(%[[IV]], %{{.*}})
// UNROLL: "tensor.extract_slice"(%{{.*}}, %[[IV1]])
// UNROLL: "stablehlo.add"(%[[N1]],
// UNROLL: "tensor.insert_slice"({{.*}}, %[[IV1]])
// UNROLL: "scf.yield"
// UNROLL: "scf.for"(%[[MAIN]], %[[T]], %{{.*}}, %[[V1]], %[[Y1]])
// UNROLL-NOT: tracec.scan

// fuse-steps=false: the values one unrolled step hands the next pass through an
// optimization barrier (none after the last step, none in the one-step loop).
// BARRIER: "scf.for"
// BARRIER: %[[N1:.*]] = "stablehlo.add"
// BARRIER: %[[B:.*]] = "stablehlo.optimization_barrier"(%[[N1]]) {tracec.fusion_barrier}
// BARRIER: "stablehlo.add"(%[[B]],
// BARRIER-NOT: optimization_barrier
// BARRIER: "scf.yield"
// BARRIER: "scf.for"
// BARRIER-NOT: optimization_barrier
// BARRIER: "scf.yield"

// A counter the step computes from constants and itself is carried on the host (read
// once per call), and the branch on it takes its predicate from there: IREE's host
// program then does not wait for the step's kernels to read the predicate back. No
// buffer view carries it; the device's copy is written once, after the loops.
// HOST: %[[K0:[0-9]+]] = "tensor.extract"(%arg1) : (tensor<i32>) -> i32
// HOST: %{{[0-9]+}}, %[[KREST:[0-9]+]] = "scf.for"(%{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[K0]])
// HOST: ^bb0(%{{[0-9]+}}: index {{.*}}, %{{[0-9]+}}: !hal.buffer_view {{.*}}, %[[K:[0-9]+]]: i32
// HOST: %[[ONE:[0-9]+]] = "arith.constant"() <{value = 1 : i32}> : () -> i32 loc("{{.*}}scan-counter.mlir":7:
// HOST: %[[KN:[0-9]+]] = "arith.addi"(%[[K]], %[[ONE]]) : (i32, i32) -> i32 loc("{{.*}}scan-counter.mlir":10:
// HOST: %[[EVERY:[0-9]+]] = "arith.constant"() <{value = 3 : i32}>
// HOST: %[[DUE:[0-9]+]] = "arith.cmpi"(%[[KN]], %[[EVERY]]) <{predicate = 5 : i64}> : (i32, i32) -> i1
// HOST: %[[KOUT:[0-9]+]] = "arith.select"(%[[DUE]], %{{[0-9]+}}, %[[KN]]) : (i1, i32, i32) -> i32
// then the device's copies of the host values it reads
// HOST: %[[KNB:[0-9]+]] = "tensor.from_elements"(%[[KN]]) : (i32) -> tensor<i32>
// HOST: %[[P:[0-9]+]] = "linalg.fill"(%[[DUE]], %{{[0-9]+}})
// HOST: }) : (i1, tensor<i1>) -> tensor<i1>
// HOST-NOT: stablehlo.select
// HOST: "stablehlo.if"(%[[P]])
// inside the branch the counter is a buffer (tensor.from_elements): the branch's kernels
// stay those of train_step, which reads it from one
// HOST-NEXT: "stablehlo.convert"(%[[KNB]]) : (tensor<i32>) -> tensor<f32>
// second unrolled step: from the first step's host value
// HOST: "arith.addi"(%[[KOUT]], %{{[0-9]+}})
// HOST-NOT: source_encoding = tensor<i32>
// HOST: "scf.yield"(%{{[0-9]+}}, %[[KEND:[0-9]+]]) : (!hal.buffer_view, i32) -> ()
// the remaining steps start from the unrolled loop's host value
// HOST: %{{[0-9]+}}, %[[KLAST:[0-9]+]] = "scf.for"(%{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[KREST]])
// HOST: "tensor.from_elements"(%[[KLAST]]) : (i32) -> tensor<i32>

// Scalars computed from such counters alone (ES-D-RTRL's bias correction 1/(1-α^n),
// an f32 step count) are computed on the host too; the step's kernels get the correction as a
// linalg.fill (IREE clones it into the kernels that read it: a push constant, no fill
// command) and computes no scalar of its own.
// SCALARS: %[[N0:[0-9]+]] = "tensor.extract"(%arg1) : (tensor<i32>) -> i32
// SCALARS: %[[T0:[0-9]+]] = "tensor.extract"(%arg2) : (tensor<f32>) -> f32
// SCALARS: "scf.for"(%{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[N0]], %[[T0]])
// SCALARS: ^bb0(%{{[0-9]+}}: index {{.*}}, %[[E:[0-9]+]]: !hal.buffer_view {{.*}}, %[[N:[0-9]+]]: i32 {{.*}}, %[[T:[0-9]+]]: f32
// SCALARS: %[[NN:[0-9]+]] = "arith.addi"(%[[N]], %{{[0-9]+}})
// SCALARS: %[[NF:[0-9]+]] = "arith.sitofp"(%[[NN]]) : (i32) -> f32
// SCALARS: %[[P:[0-9]+]] = "math.powf"(%{{[0-9]+}}, %[[NF]]) : (f32, f32) -> f32
// SCALARS: %[[D:[0-9]+]] = "arith.subf"(%{{[0-9]+}}, %[[P]])
// SCALARS: %[[C:[0-9]+]] = "arith.divf"(%{{[0-9]+}}, %[[D]])
// SCALARS: %[[TN:[0-9]+]] = "arith.addf"(%[[T]], %{{[0-9]+}}) : (f32, f32) -> f32
// SCALARS: %[[CD:[0-9]+]] = "linalg.fill"(%[[C]], %{{[0-9]+}})
// SCALARS: }) : (f32, tensor<f32>) -> tensor<f32>
// SCALARS-NOT: tensor<f32>) -> tensor<f32>
// SCALARS: "stablehlo.broadcast_in_dim"(%[[CD]])
// SCALARS: "scf.yield"(%{{[0-9]+}}, %[[NN]], %[[TN]]) : (!hal.buffer_view, i32, f32) -> ()

// quiet-windows: the host computes the counters of steps i and i+1 first; where neither
// is due and both steps fit, one iteration runs both without the branch (its untaken
// side inline, its barrier gone, the predicate the constant false); otherwise step i
// alone, branch and barrier as written. One scf.while, no second loop for the rest.
// QUIET: %[[K0:[0-9]+]] = "tensor.extract"(%arg2) : (tensor<i32>) -> i32
// QUIET: "scf.while"(%{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[K0]])
// QUIET: %[[MORE:[0-9]+]] = "arith.cmpi"(%{{[0-9]+}}, %[[T:[0-9]+]]) <{predicate = 6 : i64}> : (index, index) -> i1
// QUIET: "scf.condition"(%[[MORE]],
// QUIET: ^bb0(%[[I:[0-9]+]]: index {{.*}}, %[[WV:[0-9]+]]: !hal.buffer_view {{.*}}, %[[GV:[0-9]+]]: !hal.buffer_view {{.*}}, %[[K:[0-9]+]]: i32
// QUIET: %[[KN:[0-9]+]] = "arith.addi"(%[[K]], %{{[0-9]+}}) : (i32, i32) -> i32
// QUIET: %[[DUE0:[0-9]+]] = "arith.cmpi"(%[[KN]], %{{[0-9]+}}) <{predicate = 5 : i64}>
// QUIET: %[[K1:[0-9]+]] = "arith.select"(%[[DUE0]], %{{[0-9]+}}, %[[KN]])
// QUIET: %[[KN1:[0-9]+]] = "arith.addi"(%[[K1]], %{{[0-9]+}}) : (i32, i32) -> i32
// QUIET: %[[DUE1:[0-9]+]] = "arith.cmpi"(%[[KN1]], %{{[0-9]+}}) <{predicate = 5 : i64}>
// QUIET: %[[K2:[0-9]+]] = "arith.select"(%[[DUE1]], %{{[0-9]+}}, %[[KN1]])
// QUIET: %[[END:[0-9]+]] = "arith.addi"(%[[I]], %{{[0-9]+}}) : (index, index) -> index
// QUIET: %[[FITS:[0-9]+]] = "arith.cmpi"(%[[END]], %[[T]]) <{predicate = 7 : i64}>
// QUIET: %[[TRUE:[0-9]+]] = "arith.constant"() <{value = true}> : () -> i1
// QUIET: %[[IDLE0:[0-9]+]] = "arith.xori"(%[[DUE0]], %[[TRUE]])
// QUIET: %[[Q0:[0-9]+]] = "arith.andi"(%[[FITS]], %[[IDLE0]])
// QUIET: %[[IDLE1:[0-9]+]] = "arith.xori"(%[[DUE1]], %[[TRUE]])
// QUIET: %[[Q:[0-9]+]] = "arith.andi"(%[[Q0]], %[[IDLE1]])
// QUIET: "scf.if"(%[[Q]]) ({
// QUIET: %[[W:[0-9]+]] = "hal.tensor.import"(%[[WV]])
// QUIET: "arith.constant"() <{value = false}> : () -> i1
// QUIET-NOT: stablehlo.if
// QUIET-NOT: stablehlo.optimization_barrier
// QUIET: "hal.tensor.export"(%[[W]])
// QUIET: "scf.yield"(%[[END]], %{{[0-9]+}}, %{{[0-9]+}}, %[[K2]])
// QUIET-NEXT: }, {
// QUIET: "stablehlo.if"
// QUIET: "stablehlo.optimization_barrier"
// QUIET: "scf.yield"(%{{[0-9]+}}, %{{[0-9]+}}, %{{[0-9]+}}, %[[K1]])
// QUIET-NOT: scf.for
// QUIET: "tensor.from_elements"(%{{[0-9]+}}) : (i32) -> tensor<i32>

// Without the option: the unrolled scf.for and the loop for the rest, as above.
// NOQUIET-NOT: scf.while
// NOQUIET: "scf.for"
// NOQUIET: "scf.for"
