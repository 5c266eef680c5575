// HTML reports: one self-contained page per run, and a heat map per matrix
// sweep. The pieces live in html-run.ts, html-matrix.ts and svg-*.ts.

export { renderRunHtml, logMarks, type LogMark } from './html-run.js';
export { renderMatrixHtml, type MatrixHtmlOptions } from './html-matrix.js';
