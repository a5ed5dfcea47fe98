/** Universal adversarial perturbations across models: fitting, evaluation on held-out images, report. */
export * from './evaluate.ts';
export * from './report.ts';
export * from './job.ts';
