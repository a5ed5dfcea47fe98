import { runCommand } from '../helpers.ts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseInputShape, register } from '../../../src/cli/commands/models.ts';


const run = (args: string[]) => runCommand(register, 'models', args);

describe('jpegdl-robust models', () => {
  afterEach(() => vi.restoreAllMocks());

  it('prints a table with baseline and +JPEG counts', async () => {
    const out = await run(['--models', 'resnet8,vgg8', '--input-shape', '4,4,3', '--classes', '10', '--backend', 'auto']);
    expect(out).toMatch(/resnet8.*78,042.*78,170/);
    expect(out).toMatch(/vgg8.*too small \(min 8\)/);
    expect(out).toMatch(/10 classes/);
  });

  it('--json gives the rows', async () => {
    const rows = JSON.parse(await run(['--models', 'resnet8', '--classes', '100', '--json']));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ name: 'resnet8', baselineParams: 83_892, jpegParams: 84_020, numClasses: 100 });
  });

  it('rejects bad options with the option name', async () => {
    await expect(run(['--classes', '1'])).rejects.toThrow(/--classes must be an integer >= 2/);
    expect(() => parseInputShape('32,32')).toThrow(/--input-shape must be height,width,channels/);
    expect(parseInputShape('224x224x3')).toEqual([224, 224, 3]);
  });
});
