// `jpegdl-robust attacks`: every attack a spec can name, with the options parseAttackSpec accepts.
import { describe, expect, it, vi } from 'vitest';
import { ATTACK_NAMES } from '../../../attacks/index.ts';
import { attackRows } from '../../../src/cli/commands/attacks.ts';
import { main } from '../../../src/cli/main.ts';
import { parseAttackSpec } from '../../../src/eval/evaluate.ts';

describe('jpegdl-robust attacks', () => {
  it('lists the registry and BPDA-PGD; every listed option is one an attack spec accepts', () => {
    const rows = attackRows();
    expect(rows.map((r) => r.name)).toEqual([...ATTACK_NAMES, 'bpda-pgd']);
    for (const r of rows) {
      expect(['linf', 'l2', 'l1', 'l0']).toContain(r.norm);
      expect(r.paper.length).toBeGreaterThan(10);
      for (const [k, v] of Object.entries(r.defaults)) {
        // A default written as text ("2.5*eps/steps", "1 (5 in plus)") is documentation, not a value to pass back.
        if (typeof v === 'string' && /[ *()]/.test(v)) continue;
        expect(parseAttackSpec(`${r.name}:${k}=${String(v)}`).params[k]).toEqual(v);
      }
    }
    expect(rows.find((r) => r.name === 'cw-l2')).toMatchObject({ norm: 'l2', seeded: false });
    expect(rows.find((r) => r.name === 'pgd')).toMatchObject({ norm: 'linf', seeded: true });
    expect(rows.find((r) => r.name === 'sparse-rs')).toMatchObject({ norm: 'l0', seeded: true });
  });

  it('prints a table, or JSON with --json', async () => {
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
    try {
      expect(await main(['attacks'])).toBe(0);
      expect(out.join('\n')).toMatch(/square-l2[\s\S]*autoattack-l2[\s\S]*surrogate= and surrogateMode=/);
      expect(out.join('\n')).toMatch(/the L0 attacks count pixels: --eps 0,1,5,10/);
      expect(out.join('\n')).toMatch(/Not bounded by eps: rotations and shifts .* `jpegdl-robust spatial`/);
      out.length = 0;
      expect(await main(['attacks', '--json'])).toBe(0);
      expect(JSON.parse(out.join('\n')).map((r: { name: string }) => r.name)).toContain('cw-l2');
    } finally {
      log.mockRestore();
    }
  });
});
