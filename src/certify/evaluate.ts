/**
 * Certification of several models on one image set: per model x JPEG mode x sigma, every image's
 * randomised-smoothing certificate as one record, appended and fsynced as it finishes (a killed run
 * resumes at the next image), the same noise for every model (paired), and the summary: certified
 * accuracy per L2 radius, abstentions, average certified radius and the base classifier's accuracy.
 */
import * as tf from '@tensorflow/tfjs';
import { readJsonLines } from '../io/jsonl.ts';
import type { LabelledImages } from '../../attacks/epsilons.ts';
import { deriveSeed } from '../data/rng.ts';
import { appendRecord } from '../eval/records.ts';
import { reseedRandomLayers } from '../layers/random.ts';
import type { JobModel } from '../eval/job-models.ts';
import { jpegLayersOf, withJpegMode, type JpegMode } from '../train/jpeg-params.ts';
import { averageCertifiedRadius, certifiedAccuracy, certifySmoothed, SMOOTHING_DEFAULTS, type Certificate } from './smoothing.ts';
import { normalQuantile } from './stats.ts';

/** One image's certificate under one model (in one JPEG mode) at one sigma. */
export interface CertifyRecord extends Certificate {
  schema: 1;
  kind: 'certify';
  model: string;
  variant: string;
  modelSeed: number;
  /** JPEG mode the model ran in (null: no JPEG layer). */
  jpegMode: JpegMode | null;
  /** Noise standard deviation (0-1 scale) and its label as given ("0.25", "64/255"). */
  sigma: number;
  sigmaLabel: string;
  n0: number;
  samples: number;
  alpha: number;
  batchSize: number;
  /** The image set: dataset name, its size and the seed of subset and noise. */
  dataset: string;
  images: number;
  seed: number;
  /** Index of the image in the set. */
  index: number;
  /** The base classifier's class on the clean image. */
  basePrediction: number;
  seconds: number;
}

/** Parameters of a certification (Cohen et al.'s n0, n, alpha; per sigma). */
export interface CertifyParams {
  sigmas: { value: number; label: string }[];
  n0?: number;
  samples?: number;
  alpha?: number;
  batchSize?: number;
  seed?: number;
  dataset?: string;
  /** JSONL file: done images are skipped, new ones appended as they finish. */
  recordsPath?: string;
  /** Called after each image (done, total). */
  onImage?: (done: number, total: number, record: CertifyRecord) => void;
}

/** Everything that makes two records the same series (model, mode, sigma, parameters); the image index is apart. */
export const certifySeriesKey = (r: Pick<CertifyRecord, 'model' | 'modelSeed' | 'jpegMode' | 'sigma' | 'n0' | 'samples' | 'alpha' | 'batchSize'>) =>
  JSON.stringify([r.model, r.modelSeed, r.jpegMode ?? '', r.sigma, r.n0, r.samples, r.alpha, r.batchSize]);

/**
 * Load certification records (missing file: none); refuse records of other images. A torn last line
 * (a kill mid-append) is dropped, and with `repair` cut from the file so appends start clean.
 */
export function loadCertifyRecords(path: string, expect?: { dataset: string; images: number; seed: number }, { repair = false }: { repair?: boolean } = {}): CertifyRecord[] {
  return readJsonLines(path, { repair }).map(({ value, line }) => {
    const r = value as CertifyRecord;
    if (r.kind !== 'certify') throw new Error(`${path}:${line}: not a certification record (kind ${String(r.kind)})`);
    if (expect && (r.dataset !== expect.dataset || r.images !== expect.images || r.seed !== expect.seed)) {
      throw new Error(`${path} holds certificates of other images (${r.dataset}, ${r.images} images, seed ${r.seed}; this run: ${expect.dataset}, ${expect.images} images, seed ${expect.seed}); use another --out`);
    }
    return r;
  });
}

/** Stream tag of the clean predictions' draws of a randomised model (apart from the noise streams). */
const BASE_STREAM = 0x62617365;

/** The base classifier's class for every image (inference mode), in batches; pixels 0-1. */
function basePredictions(model: tf.LayersModel, data: LabelledImages, batchSize: number): Int32Array {
  const n = data.labels.length;
  const pixels = data.height * data.width * data.channels;
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batchSize) {
    const m = Math.min(batchSize, n - s);
    const pred = tf.tidy(() => tf.argMax(model.apply(tf.tensor4d(data.images.subarray(s * pixels, (s + m) * pixels), [m, data.height, data.width, data.channels]), { training: false }) as tf.Tensor2D, 1));
    out.set(pred.dataSync(), s);
    pred.dispose();
  }
  return out;
}

/** Certify every image under every model, mode and sigma (or resume); returns all records of these parameters. */
export async function certifyModels(models: JobModel[], data: LabelledImages, p: CertifyParams): Promise<CertifyRecord[]> {
  if (models.length === 0) throw new Error('models: nothing to certify');
  if (!p.sigmas.length) throw new Error('sigmas: the list is empty');
  const o = { n0: p.n0 ?? SMOOTHING_DEFAULTS.n0, samples: p.samples ?? SMOOTHING_DEFAULTS.n, alpha: p.alpha ?? SMOOTHING_DEFAULTS.alpha, batchSize: p.batchSize ?? SMOOTHING_DEFAULTS.batchSize, seed: p.seed ?? 0 };
  const dataset = p.dataset ?? 'unnamed';
  const n = data.labels.length;
  const pixels = data.height * data.width * data.channels;
  const series = models.flatMap((m) => (jpegLayersOf(m.model).length ? (m.jpegModes ?? ['soft', 'hard']).map((mode) => ({ ...m, mode: mode as JpegMode | null })) : [{ ...m, mode: null as JpegMode | null }]));
  const done = new Map<string, CertifyRecord>();
  if (p.recordsPath) for (const r of loadCertifyRecords(p.recordsPath, { dataset, images: n, seed: o.seed }, { repair: true })) done.set(`${certifySeriesKey(r)}#${r.index}`, r);
  const total = series.length * p.sigmas.length * n;
  let count = 0;
  const records: CertifyRecord[] = [];
  for (const s of series) {
    const run = async () => {
      let base: Int32Array | null = null;
      for (const sigma of p.sigmas) {
        const head = { model: s.name, modelSeed: s.modelSeed, jpegMode: s.mode, sigma: sigma.value, n0: o.n0, samples: o.samples, alpha: o.alpha, batchSize: o.batchSize };
        const key = certifySeriesKey(head);
        for (let i = 0; i < n; i++) {
          let rec = done.get(`${key}#${i}`);
          if (!rec) {
            if (!base) {
              // A randomised model (random JPEG, TV minimisation) draws its clean predictions from a fixed seed too.
              reseedRandomLayers(s.model, deriveSeed(o.seed, BASE_STREAM));
              base = basePredictions(s.model, data, 100);
            }
            const t0 = performance.now();
            const x = tf.tensor4d(data.images.subarray(i * pixels, (i + 1) * pixels), [1, data.height, data.width, data.channels]);
            const y = tf.tensor1d([data.labels[i]], 'int32');
            let cert: Certificate;
            try {
              // indexOffset i: image i gets the same noise under every model and whatever was done before.
              [cert] = certifySmoothed(s.model, x, y, { sigma: sigma.value, n0: o.n0, n: o.samples, alpha: o.alpha, batchSize: o.batchSize, seed: o.seed, indexOffset: i });
            } finally {
              tf.dispose([x, y]);
            }
            rec = { schema: 1, kind: 'certify', ...head, variant: s.variant, sigmaLabel: sigma.label, dataset, images: n, seed: o.seed, index: i, ...cert, basePrediction: base[i], seconds: (performance.now() - t0) / 1000 };
            if (p.recordsPath) appendRecord(p.recordsPath, rec);
          }
          records.push(rec);
          p.onImage?.(++count, total, rec);
        }
      }
    };
    if (s.mode) await withJpegMode(s.model, s.mode, run);
    else await run();
  }
  return records;
}

/** One model (in one mode) at one sigma, summarised. */
export interface CertifiedSeries {
  key: string;
  /** e.g. "jpeg-dl [soft], σ = 0.25". */
  label: string;
  model: string;
  variant: string;
  jpegMode: JpegMode | null;
  sigma: number;
  sigmaLabel: string;
  images: number;
  n0: number;
  samples: number;
  alpha: number;
  /** The base classifier's clean accuracy on these images. */
  baseAccuracy: number;
  /** Images the smoothed classifier abstained on (fraction). */
  abstained: number;
  /** Average certified radius (0 where wrong or abstaining), L2 on the 0-1 scale. */
  acr: number;
  /** The largest radius n samples can certify: σ·Φ⁻¹(alpha^(1/n)). */
  maxRadius: number;
  /** Certified accuracy per radius (the first radius 0 = the smoothed classifier's accuracy with abstentions wrong). */
  results: { radius: number; radiusLabel: string; certifiedAccuracy: number; certified: number }[];
}

/** Certified accuracy of every series at every radius (L2, 0-1 scale), from the records, in record order. */
export function summarizeCertificates(records: CertifyRecord[], radii: { value: number; label: string }[]): CertifiedSeries[] {
  const groups = new Map<string, CertifyRecord[]>();
  for (const r of records) {
    const k = certifySeriesKey(r);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups.entries()].map(([key, rs]) => {
    const r = rs[0];
    const acc = certifiedAccuracy(rs, radii.map((x) => x.value));
    return {
      key,
      label: `${r.model}${r.modelSeed ? `#${r.modelSeed}` : ''}${r.jpegMode ? ` [${r.jpegMode}]` : ''}, σ = ${r.sigmaLabel}`,
      model: r.model, variant: r.variant, jpegMode: r.jpegMode, sigma: r.sigma, sigmaLabel: r.sigmaLabel,
      images: rs.length, n0: r.n0, samples: r.samples, alpha: r.alpha,
      baseAccuracy: rs.filter((x) => x.basePrediction === x.label).length / rs.length,
      abstained: rs.filter((x) => x.prediction < 0).length / rs.length,
      acr: averageCertifiedRadius(rs),
      maxRadius: r.sigma * normalQuantile(r.alpha ** (1 / r.samples)),
      results: radii.map((x, j) => ({ radius: x.value, radiusLabel: x.label, certifiedAccuracy: acc[j], certified: Math.round(acc[j] * rs.length) })),
    };
  });
}
