/** Spatial robustness (rotations and shifts, Engstrom et al. 2019): the transforms, their evaluation and report. */
export * from './transform.ts';
export * from './evaluate.ts';
export * from './report.ts';
export * from './job.ts';
