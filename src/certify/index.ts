/** Certified L2 robustness by randomised smoothing: the certificate, its statistics, the job and its report. */
export * from './smoothing.ts';
export { binomialTestHalf, binomialUpperTail, clopperPearsonLower, normalCdf, normalQuantile, regularisedBeta } from './stats.ts';
export { certifyModels, loadCertifyRecords, summarizeCertificates, type CertifiedSeries, type CertifyParams, type CertifyRecord } from './evaluate.ts';
export { runCertifyJob, DEFAULT_RADII, type CertifyJobOptions } from './job.ts';
export { writeCertifyReport, renderCertifyMarkdown, renderCertifyTerminal, renderCertifyHtml } from './report.ts';
