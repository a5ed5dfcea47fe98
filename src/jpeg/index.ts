/** The differentiable JPEG layer (JPEG-DL): public API. */
export * from './tables.ts';
export * from './colour.ts';
export * from './blocks.ts';
export * from './dct.ts';
export * from './quantize.ts';
export * from './forward.ts';
export * from './layer.ts';
export * from './init.ts';
export * from './random.ts';
export * from './modes.ts';
