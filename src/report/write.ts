/** Write a report directory: report.json, report.md, report.html (each atomically). */
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../io/atomic.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import type { Report } from './model.ts';

/** Paths written by writeReport. */
export interface ReportFiles {
  json: string;
  markdown: string;
  html: string;
}

/** Render `report` into `dir` as report.json, report.md and report.html; returns the paths. */
export function writeReport(dir: string, report: Report): ReportFiles {
  const files = { json: join(dir, 'report.json'), markdown: join(dir, 'report.md'), html: join(dir, 'report.html') };
  // Render everything first so a rendering error leaves the previous files untouched.
  const md = renderMarkdown(report);
  const html = renderHtml(report);
  writeJsonAtomic(files.json, report);
  writeFileAtomic(files.markdown, md);
  writeFileAtomic(files.html, html);
  return files;
}
