// Public API of the dump layer: vmcore file formats, standalone.

export * from './elf.js';
export * from './elf-note.js';
export * from './prstatus.js';
export * from './vmcoreinfo.js';
export * from './page-source.js';
export * from './elf-vmcore-writer.js';
export * from './elf-vmcore-reader.js';
export * from './vmcore-reader.js';
export * from './kdump-compressed.js';
export * from './kdump-compressed-writer.js';
export * from './kdump-compressed-reader.js';
export * from './split-kdump-reader.js';
export * from './compress-pool.js';
export * from './convert.js';
export * from './flattened.js';
