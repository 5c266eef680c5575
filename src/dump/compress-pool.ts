// Page compression spread over worker threads, driven synchronously.
//
// The kdump-compressed writer stays a plain synchronous loop: it fills a
// batch of pages in shared memory, publishes it, and later takes the results
// back in the order the batches were published, so the file is byte for byte
// what the single-thread path writes. The writer blocks (Atomics.wait) only
// when every slot is in flight; memory is bounded by the slot count (each
// slot holds BATCH_PAGES pages in and BATCH_PAGES pages out).
//
// Workers are eval'd from a small self-contained script (so the pool works
// the same from compiled output and from the TypeScript sources under test)
// and load the same codec packages codecs.ts uses, resolved by the parent.
// They talk to the parent only through shared memory: a parent blocked in
// Atomics.wait cannot receive messages, so errors come back that way too.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { requireCodec, type Codec } from './codecs.js';
import { PAGE_SIZE } from './page-source.js';
import { INCOMPRESSIBLE_MAX_REPEATS, INCOMPRESSIBLE_MIN_BITS, PAGE_COMPRESSOR_SOURCE } from './page-compress.js';

/** Pages per batch (1 MiB in, 1 MiB out). */
export const BATCH_PAGES = 256;
/** The most threads a pool runs. */
export const MAX_THREADS = 64;
/** How long the parent waits for one batch before deciding a worker is gone. */
const BATCH_TIMEOUT_MS = 120_000;

// ctrl words.
const PUBLISHED = 0; // batches published so far
const CLAIMED = 1; // batches claimed by workers (may run past PUBLISHED)
const STOP = 2; // 1: workers leave
const FAILED = 3; // 1: a worker failed; message in errorBytes
const READY = 4; // workers that loaded their codec
const CTRL_WORDS = 8;
const ERROR_BYTES = 1024;

/** Package each codec's worker loads, and how it compresses one page (page-compress.ts, the same code as the inline path). */
const WORKER_SOURCE = String.raw`
const { workerData } = require('node:worker_threads');
const { ctrl, done, sizes, input, output, slots, batchPages, pageSize, codec, modulePath, errorBytes, maxRepeats, minBits } = workerData;
const ctrlI = new Int32Array(ctrl);
const doneI = new Int32Array(done);
const sizesI = new Int32Array(sizes);
const inU = new Uint8Array(input);
const outU = new Uint8Array(output);
const errU = new Uint8Array(errorBytes);
function fail(e) {
  if (Atomics.compareExchange(ctrlI, ${FAILED}, 0, 1) === 0) {
    const msg = Buffer.from(String((e && e.stack) || e), 'utf8').subarray(0, errU.length);
    errU.set(msg);
  }
  for (let s = 0; s < slots; s++) Atomics.notify(doneI, s);
}
${PAGE_COMPRESSOR_SOURCE}
let compressInto;
try {
  if (codec === 'zlib') {
    compressInto = makePageCompressor(require('node:zlib'), null, pageSize, maxRepeats, minBits, makeIncompressibleTest);
  } else if (codec === 'lzo') {
    const m = require(modulePath);
    compressInto = makePageCompressor(null, (p) => m.compress(p), pageSize, maxRepeats, minBits, makeIncompressibleTest);
  } else if (codec === 'snappy') {
    const m = require(modulePath);
    compressInto = makePageCompressor(null, (p) => m.compressSync(p), pageSize, maxRepeats, minBits, makeIncompressibleTest);
  } else if (codec === 'zstd') {
    const m = require(modulePath);
    const enc = new m.Encoder(1);
    compressInto = makePageCompressor(null, (p) => enc.encodeSync(p), pageSize, maxRepeats, minBits, makeIncompressibleTest);
  } else {
    throw new Error('unknown codec ' + codec);
  }
  Atomics.add(ctrlI, ${READY}, 1);
  for (;;) {
    const job = Atomics.add(ctrlI, ${CLAIMED}, 1);
    let stop = false;
    for (;;) {
      const seen = Atomics.load(ctrlI, ${PUBLISHED});
      if (Atomics.load(ctrlI, ${STOP}) !== 0) { stop = true; break; }
      if (seen > job) break;
      Atomics.wait(ctrlI, ${PUBLISHED}, seen);
    }
    if (stop) break;
    const s = job % slots;
    const n = sizesI[slots * batchPages + s];
    const base = s * batchPages * pageSize;
    for (let i = 0; i < n; i++) {
      const off = base + i * pageSize;
      const len = compressInto(Buffer.from(input, off, pageSize), outU, off);
      sizesI[s * batchPages + i] = len >= 0 ? len : pageSize;
    }
    Atomics.store(doneI, s, job + 1);
    Atomics.notify(doneI, s);
  }
} catch (e) {
  fail(e);
}
`;

export interface CompressedBatch {
  /** Pages in the batch. */
  readonly count: number;
  /** Stored size of page i: < PAGE_SIZE compressed (bytes in output), PAGE_SIZE raw (bytes in input). */
  size(i: number): number;
  /** Page i's input bytes. */
  input(i: number): Uint8Array;
  /** Page i's compressed bytes (valid when size(i) < PAGE_SIZE). */
  output(i: number): Uint8Array;
}

/**
 * A pool of `threads` workers compressing batches of pages with one codec.
 * Use: fill() the current batch's page slots, publish(), and take() results
 * in publishing order; close() when done (also after an error).
 */
export class CompressPool {
  readonly threads: number;
  readonly slots: number;
  readonly #codec: Codec;
  readonly #workers: Worker[] = [];
  readonly #ctrl: Int32Array;
  readonly #done: Int32Array;
  readonly #sizes: Int32Array;
  readonly #input: Uint8Array;
  readonly #output: Uint8Array;
  readonly #error: Uint8Array;
  #published = 0;
  #taken = 0;
  #closed = false;

  constructor(codec: Codec, threads: number, slots = 2 * threads) {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new RangeError(`Cannot start a compression pool of ${threads} threads: expected 1 to ${MAX_THREADS}`);
    }
    if (codec === 'none') throw new RangeError('Cannot start a compression pool for codec "none": there is nothing to compress');
    const c = requireCodec(codec); // a missing package fails here, in the parent, naming it
    this.threads = threads;
    this.slots = Math.max(2, slots);
    this.#codec = codec;
    const ctrl = new SharedArrayBuffer(CTRL_WORDS * 4);
    const done = new SharedArrayBuffer(this.slots * 4);
    // Per-page sizes, then one page count per slot.
    const sizes = new SharedArrayBuffer((this.slots * BATCH_PAGES + this.slots) * 4);
    const input = new SharedArrayBuffer(this.slots * BATCH_PAGES * PAGE_SIZE);
    const output = new SharedArrayBuffer(this.slots * BATCH_PAGES * PAGE_SIZE);
    const errorBytes = new SharedArrayBuffer(ERROR_BYTES);
    this.#ctrl = new Int32Array(ctrl);
    this.#done = new Int32Array(done);
    this.#sizes = new Int32Array(sizes);
    this.#input = new Uint8Array(input);
    this.#output = new Uint8Array(output);
    this.#error = new Uint8Array(errorBytes);
    const modulePath = c.packageName === 'node:zlib' ? '' : createRequire(import.meta.url).resolve(c.packageName);
    const workerData = {
      ctrl, done, sizes, input, output, slots: this.slots, batchPages: BATCH_PAGES, pageSize: PAGE_SIZE, codec, modulePath, errorBytes,
      maxRepeats: INCOMPRESSIBLE_MAX_REPEATS, minBits: INCOMPRESSIBLE_MIN_BITS,
    };
    try {
      for (let i = 0; i < threads; i++) {
        const w = new Worker(WORKER_SOURCE, { eval: true, workerData });
        w.unref(); // never keeps the process alive; close() stops it
        this.#workers.push(w);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Batches published and not yet taken. */
  get inFlight(): number {
    return this.#published - this.#taken;
  }

  /** Whether publish() can go ahead without taking a batch first. */
  get full(): boolean {
    return this.inFlight >= this.slots;
  }

  /** The input area of page i of the batch being filled (the next one to publish). */
  pageSlot(i: number): Uint8Array {
    if (this.full) throw new Error('Cannot fill a batch: every slot is in flight; take() one first');
    const s = this.#published % this.slots;
    const off = (s * BATCH_PAGES + i) * PAGE_SIZE;
    return this.#input.subarray(off, off + PAGE_SIZE);
  }

  /** Hands the batch being filled (its first `count` pages) to the workers. */
  publish(count: number): void {
    if (this.#closed) throw new Error('Cannot publish a batch: the compression pool is closed');
    if (this.full) throw new Error('Cannot publish a batch: every slot is in flight; take() one first');
    if (!Number.isInteger(count) || count < 0 || count > BATCH_PAGES) throw new RangeError(`Cannot publish a batch of ${count} pages: expected 0 to ${BATCH_PAGES}`);
    const s = this.#published % this.slots;
    this.#sizes[this.slots * BATCH_PAGES + s] = count;
    this.#published++;
    Atomics.store(this.#ctrl, PUBLISHED, this.#published);
    Atomics.notify(this.#ctrl, PUBLISHED);
  }

  /** Waits for the oldest published batch and returns its results, valid until the slot is filled again. */
  take(): CompressedBatch {
    if (this.inFlight === 0) throw new Error('Cannot take a batch: none is in flight');
    const job = this.#taken;
    const s = job % this.slots;
    let waited = 0;
    for (;;) {
      const v = Atomics.load(this.#done, s);
      if (v === job + 1) break;
      this.#checkFailed();
      if (waited >= BATCH_TIMEOUT_MS) {
        throw new Error(`Cannot compress pages with ${this.#codec}: no worker finished batch ${job} in ${BATCH_TIMEOUT_MS / 1000} s (${Atomics.load(this.#ctrl, READY)} of ${this.threads} workers started)`);
      }
      const t0 = performance.now();
      Atomics.wait(this.#done, s, v, 1000);
      waited += performance.now() - t0;
    }
    this.#taken++;
    const sizes = this.#sizes;
    const input = this.#input;
    const output = this.#output;
    const base = s * BATCH_PAGES;
    return {
      count: sizes[this.slots * BATCH_PAGES + s] ?? 0,
      size: (i) => sizes[base + i] ?? PAGE_SIZE,
      input: (i) => input.subarray((base + i) * PAGE_SIZE, (base + i + 1) * PAGE_SIZE),
      output: (i) => output.subarray((base + i) * PAGE_SIZE, (base + i) * PAGE_SIZE + (sizes[base + i] ?? PAGE_SIZE)),
    };
  }

  /** Stops the workers; safe to call more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    Atomics.store(this.#ctrl, STOP, 1);
    Atomics.add(this.#ctrl, PUBLISHED, 1);
    Atomics.notify(this.#ctrl, PUBLISHED);
    for (const w of this.#workers) void w.terminate();
  }

  #checkFailed(): void {
    if (Atomics.load(this.#ctrl, FAILED) === 0) return;
    const end = this.#error.indexOf(0);
    const msg = Buffer.from(this.#error.subarray(0, end < 0 ? this.#error.length : end)).toString('utf8');
    throw new Error(`Cannot compress pages with ${this.#codec}: a compression worker failed: ${msg.split('\n')[0] ?? ''}`);
  }
}
