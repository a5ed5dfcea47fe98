/** Adversarial patches across models: fitting, evaluation on held-out images (random and worst position), report. */
export * from './evaluate.ts';
export * from './report.ts';
export * from './job.ts';
