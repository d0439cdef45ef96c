// One time step of a layer of leaky integrate-and-fire neurons with a linear readout,
// in StableHLO, as any producer can write it (here by hand). Batch 2, 3 inputs,
// 4 neurons, 2 outputs.
//
//   tracec examples/lif_step.mlir -o lif.vmfb --algorithm d-rtrl
//
// No tracec.role attributes: the roles are tracec's defaults (docs/abi.md,
// "StableHLO input files"). @init_params returns two values and @init_state one, so
// the step's arguments are two parameters, one state and the input; its results are
// the new state, then the output; @loss takes the output, then the target.
// tracec.name only names the arrays in the manifest and the runtime.

// v' = 0.9 v + x W_in - spike(v - 1);  z = spike(v' - 1);  y = (z + 0.1 v') W_out
func.func @step(%w_in: tensor<3x4xf32> {tracec.name = "w_in"},
                %w_out: tensor<4x2xf32> {tracec.name = "w_out"},
                %v: tensor<2x4xf32> {tracec.name = "v"},
                %x: tensor<2x3xf32>)
    -> (tensor<2x4xf32>, tensor<2x2xf32>) {
  %one = stablehlo.constant dense<1.0> : tensor<2x4xf32>
  %tau = stablehlo.constant dense<0.9> : tensor<2x4xf32>
  %tenth = stablehlo.constant dense<0.1> : tensor<2x4xf32>
  // reset by the spike of the previous step
  %above_prev = stablehlo.subtract %v, %one : tensor<2x4xf32>
  %z_prev = stablehlo.composite "tracec.spike" %above_prev {
      composite_attributes = {surrogate = "fast-sigmoid", alpha = 5.0 : f64},
      decomposition = @heaviside} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %leak = stablehlo.multiply %tau, %v : tensor<2x4xf32>
  %current = stablehlo.dot_general %x, %w_in, contracting_dims = [1] x [0]
      : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %charged = stablehlo.add %leak, %current : tensor<2x4xf32>
  %v_new = stablehlo.subtract %charged, %z_prev : tensor<2x4xf32>
  // spike of this step (fast-sigmoid surrogate derivative 1/(1+5|v'-1|)^2)
  %above = stablehlo.subtract %v_new, %one : tensor<2x4xf32>
  %z = stablehlo.composite "tracec.spike" %above {
      composite_attributes = {surrogate = "fast-sigmoid", alpha = 5.0 : f64},
      decomposition = @heaviside} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  // readout
  %leaky_v = stablehlo.multiply %tenth, %v_new : tensor<2x4xf32>
  %h = stablehlo.add %z, %leaky_v : tensor<2x4xf32>
  %y = stablehlo.dot_general %h, %w_out, contracting_dims = [1] x [0]
      : (tensor<2x4xf32>, tensor<4x2xf32>) -> tensor<2x2xf32>
  return %v_new, %y : tensor<2x4xf32>, tensor<2x2xf32>
}

// The spike's forward: v > 0 as 0.0 / 1.0.
func.func private @heaviside(%u: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %zero = stablehlo.constant dense<0.0> : tensor<2x4xf32>
  %fired = stablehlo.compare GT, %u, %zero, FLOAT : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xi1>
  %z = stablehlo.convert %fired : (tensor<2x4xi1>) -> tensor<2x4xf32>
  return %z : tensor<2x4xf32>
}

// Per-step loss: mean squared error of the output against the target.
func.func @loss(%y: tensor<2x2xf32>, %target: tensor<2x2xf32>) -> tensor<f32> {
  %err = stablehlo.subtract %y, %target : tensor<2x2xf32>
  %sq = stablehlo.multiply %err, %err : tensor<2x2xf32>
  %zero = stablehlo.constant dense<0.0> : tensor<f32>
  %sum = stablehlo.reduce(%sq init: %zero) applies stablehlo.add across dimensions = [0, 1]
      : (tensor<2x2xf32>, tensor<f32>) -> tensor<f32>
  %n = stablehlo.constant dense<4.0> : tensor<f32>
  %mean = stablehlo.divide %sum, %n : tensor<f32>
  return %mean : tensor<f32>
}

// Initial parameters, in the order of the step's parameter arguments.
func.func @init_params() -> (tensor<3x4xf32>, tensor<4x2xf32>) {
  %w_in = stablehlo.constant dense<[[1.00, -0.91, 0.75, 1.17],
                                    [-0.87, 0.59, 0.72, -1.03],
                                    [1.66, 0.89, -1.29, 0.13]]> : tensor<3x4xf32>
  %w_out = stablehlo.constant dense<[[-0.44, 0.64], [0.21, -0.35],
                                     [-0.76, 0.18], [0.15, 0.30]]> : tensor<4x2xf32>
  return %w_in, %w_out : tensor<3x4xf32>, tensor<4x2xf32>
}

// Initial state, in the order of the step's state arguments.
func.func @init_state() -> tensor<2x4xf32> {
  %v = stablehlo.constant dense<0.0> : tensor<2x4xf32>
  return %v : tensor<2x4xf32>
}
