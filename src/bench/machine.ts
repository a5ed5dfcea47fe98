/** Where a benchmark ran: CPU, cores, OS, runtime versions and load (the machine may be shared). */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  /** Logical cores the OS reports. */
  cores: number;
  os: string;
  node: string;
  /** 1/5/15-minute load averages when the run started (a load above `cores` means contention). */
  loadAvgStart: number[];
  loadAvgEnd?: number[];
}

/** CPU model from /proc/cpuinfo (falls back to os.cpus()). */
export function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1].trim();
  } catch {
    // Not Linux: os.cpus() below.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** Snapshot of the machine at the start of a run. */
export function machineInfo(): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAvgStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}
