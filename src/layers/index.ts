/** Every custom layer of the model zoo; importing this file registers them for (de)serialisation. */
export { Normalize, validateNormalization, type NormalizeArgs } from './normalize.ts';
export { ChannelReverse, ChannelSlice, ChannelShuffle } from './channel-ops.ts';
export { ConstantArithmetic, ConstantPad2D, Erf, LogSoftmax, CONSTANT_OPS, type ConstantOp } from './onnx-ops.ts';
export { BitDepthReduction, MedianSmoothing, medianFilter, SQUEEZE_LAYER_CLASSES, SQUEEZE_MODES, type BitDepthArgs, type MedianArgs, type SqueezeMode } from './squeeze.ts';
export { MeanOfDraws, RepeatDraws, type DrawsArgs } from './draws.ts';
export { RandomResizePad, RESIZE_INTERPOLATIONS, resizeWeights, type RandomResizePadArgs, type ResizeInterpolation, type ResizePadDraws } from './resize-pad.ts';
export { isRandomised, isReseedable, randomLayersOf, reseedRandomLayers, type Reseedable } from './random.ts';
export { TotalVariationMin, TVM_DEFAULTS, tvMinimise, tvObjective, type TotalVariationMinArgs } from './tv-min.ts';
