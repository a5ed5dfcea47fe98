/** Gradient-masking diagnostics (Carlini et al. 2019's checklist, measured): probes, convergence, unbounded attacks, report. */
export * from './probes.ts';
export * from './evaluate.ts';
export * from './summary.ts';
export * from './report.ts';
export * from './job.ts';
