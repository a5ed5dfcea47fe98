/** Host-side helpers for targeted runs (APGD-T, FAB-T): the wrong classes ranked by the clean logits. */

/** Index of the largest entry (the first on ties). */
export function argMax(v: ArrayLike<number>): number {
  let best = 0;
  for (let k = 1; k < v.length; k++) if (v[k] > v[best]) best = k;
  return best;
}

/** Per example, the classes other than its label from most to least likely (AutoAttack's target order). */
export function wrongClassesByLikelihood(logits: number[][], labels: ArrayLike<number>): number[][] {
  return logits.map((z, i) => z.map((v, k) => [v, k]).filter(([, k]) => k !== labels[i]).sort((a, b) => b[0] - a[0]).map(([, k]) => k));
}

/** Success rate over the images that count: all of them, or (targeted) those not already of the target class. */
export function successRateOver(success: ArrayLike<number>, labels: ArrayLike<number>, target: number | null): number {
  let [hit, count] = [0, 0];
  for (let i = 0; i < success.length; i++) {
    if (target !== null && labels[i] === target) continue;
    count++;
    hit += success[i];
  }
  return count ? hit / count : 0;
}
