/**
 * jpegdl-robust: the library, importable without the command line.
 * Call `initBackend()` first to pick the compute backend (native TensorFlow when available).
 * Pixels are float32 in [0,1], NHWC; epsilons are on the 0-1 scale.
 */
export * from './backend.ts';
export * from './types.ts';
export { foldBatchNorm, type FoldedModel, type FoldSummary } from './inference/fold-batchnorm.ts';
export { inferenceModel, setBatchNormFolding } from './inference/model.ts';
export * from './eps.ts';
export * from './io/atomic.ts';
export * from './io/model-io.ts';
export * from './io/import-model.ts';
export { loadKerasModel } from './io/keras.ts';
export { inspectOnnxModel, loadOnnxModel, loadOnnxModelWithInfo, SUPPORTED_OPS as SUPPORTED_ONNX_OPS, type OnnxModelInfo } from './io/onnx.ts';
export * from './testing/memory.ts';
export * from './jpeg/index.ts';
export * from './layers/index.ts';
export * from './data/index.ts';
export * as train from './train/index.ts';
export { buildModel, listModels, getModelInfo, countTrainableParams, MODEL_NAMES, type BuildModelOptions, type ModelInfo } from '../models/registry.ts';
export * as attacks from '../attacks/index.ts';
export * as certify from './certify/index.ts';
export * as corruptions from './corruptions/index.ts';
export * as defences from './defences/index.ts';
export * as diagnose from './diagnose/index.ts';
export * as patch from './patch/index.ts';
export * as spatial from './spatial/index.ts';
export * as universal from './universal/index.ts';
export { closeSweepWorkers, runSweep } from './eval/sweep.ts';
export { evaluate, parseAttackSpec, DEFAULT_EPSILONS, DEFAULT_ATTACKS } from './eval/evaluate.ts';
export { robustAccuracy, aggregate, meanStd } from './eval/summary.ts';
export { loadRecords, appendRecord, type CellRecord } from './eval/records.ts';
export { buildReport } from './report/model.ts';
export { writeReport } from './report/write.ts';
export { checkReport, makeBaseline, readBaseline, readReport, formatCheck } from './report/check.ts';
export { leaderboardEntries, rankEntries, writeLeaderboard, type LeaderboardEntry } from './report/leaderboard.ts';
export { mcnemarExact, pairedComparisons, type PairedRow } from './report/paired.ts';
export { perClassTable, perClassRows, type ClassInfo, type PerClassTable } from './report/per-class.ts';
export { exampleGridPng, imageGridPng, writeAdversarialExamples } from './report/examples.ts';
export { PAPER_NUMBERS, paperNumbersFor } from './paper/numbers.ts';
export { runJob, type RunOptions, type RunResult } from './run/pipeline.ts';
export { PRESETS } from './run/presets.ts';
