/** Joint training (backbone SGD + JPEG-table Adam), checkpoints, resume, clean evaluation. */
export * from './config.ts';
export * from './optimizers.ts';
export * from './jpeg-params.ts';
export * from './checkpoint.ts';
export * from './evaluate.ts';
export * from './history.ts';
export * from './trainer.ts';
export * from './adversarial.ts';
