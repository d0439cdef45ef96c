// A scan as ES-D-RTRL and Adam write it: a trace e, a step count n (i32) and the
// optimizer's step count t (f32), and a bias correction 1/(1-0.9^n) that scales the
// trace's device update.
func.func @train_sequence(%e0: tensor<3xf32>, %n0: tensor<i32>, %t0: tensor<f32>, %xs: tensor<?x3xf32>) -> (tensor<3xf32>, tensor<i32>, tensor<f32>) {
  %r:3 = "tracec.scan"(%e0, %n0, %t0, %xs) <{operandSegmentSizes = array<i32: 3, 1>}> ({
  ^bb0(%e: tensor<3xf32>, %n: tensor<i32>, %t: tensor<f32>, %x: tensor<3xf32>):
    %one = stablehlo.constant dense<1> : tensor<i32>
    %onef = stablehlo.constant dense<1.0> : tensor<f32>
    %alpha = stablehlo.constant dense<0.9> : tensor<f32>
    %nn = stablehlo.add %n, %one : tensor<i32>
    %nf = stablehlo.convert %nn : (tensor<i32>) -> tensor<f32>
    %p = stablehlo.power %alpha, %nf : tensor<f32>
    %d = stablehlo.subtract %onef, %p : tensor<f32>
    %corr = stablehlo.divide %onef, %d : tensor<f32>
    %tn = stablehlo.add %t, %onef : tensor<f32>
    %cb = stablehlo.broadcast_in_dim %corr, dims = [] : (tensor<f32>) -> tensor<3xf32>
    %s = stablehlo.multiply %x, %cb : tensor<3xf32>
    %en = stablehlo.add %e, %s : tensor<3xf32>
    "tracec.yield"(%en, %nn, %tn) : (tensor<3xf32>, tensor<i32>, tensor<f32>) -> ()
  }) : (tensor<3xf32>, tensor<i32>, tensor<f32>, tensor<?x3xf32>) -> (tensor<3xf32>, tensor<i32>, tensor<f32>) loc("model.py":1:1)
  return %r#0, %r#1, %r#2 : tensor<3xf32>, tensor<i32>, tensor<f32>
}
