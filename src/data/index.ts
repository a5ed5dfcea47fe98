/** The data layer's public API: loaders, subsets, batches, download. */
export * from './types.ts';
export { loadDataset, checkSpec, locateDataset, defaultDataHome, DATASET_DESCRIPTIONS, FASHION_MNIST_SYSTEM_DIR } from './load.ts';
export { subset, subsetIndices, balancedQuotas } from './subset.ts';
export { batches, numBatches, epochOrder, shiftFlip, type Batch, type BatchOptions, type AugmentOptions } from './batches.ts';
export { createRng, deriveSeed, permutation, shuffleInPlace, type Rng } from './rng.ts';
export { makeSynthetic, SYNTHETIC_CLASSES } from './synthetic.ts';
export { loadEmbeddedFashionMnist, EMBEDDED_DIR } from './embedded.ts';
export { loadIdxDir, loadIdxPair, readIdxFile, parseIdx, encodeIdx, FASHION_MNIST_CLASSES } from './idx.ts';
export { loadCifarDir, parseCifarBatch, encodeCifarBatch } from './cifar.ts';
export { loadImageFolder, decodeImageFile } from './folder.ts';
export { resizeDataset, convertChannels } from './transform.ts';
export { downloadCifar, CIFAR_ARCHIVES, CIFAR_BASE_URL } from './download.ts';
