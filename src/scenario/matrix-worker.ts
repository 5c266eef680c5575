// A worker thread of a matrix run: receives cells, runs each, replies with
// the MatrixCell (or the error, so the pool can report it by cell).

import { parentPort } from 'node:worker_threads';
import { InputError } from '../util/errors.js';
import { runMatrixCell, type WorkerReply } from './matrix-cell.js';
import type { MatrixCellSpec } from './matrix.js';

const port = parentPort;
if (port === null) throw new Error('matrix-worker runs as a worker thread only');

port.on('message', (spec: MatrixCellSpec) => {
  let reply: WorkerReply;
  try {
    reply = { index: spec.index, ok: true, cell: runMatrixCell(spec) };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    reply = { index: spec.index, ok: false, message: err.message, inputError: e instanceof InputError, stack: err.stack };
  }
  port.postMessage(reply);
});
