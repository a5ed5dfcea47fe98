/** Common corruptions (CIFAR-10-C style): the functions, their evaluation and report. */
export * from './functions.ts';
export * from './random.ts';
export * from './evaluate.ts';
export * from './report.ts';
export * from './job.ts';
