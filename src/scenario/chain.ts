// The trace kinds a run's causal chain is told from. The machine keeps them
// even once its trace is full, so a long or busy run never loses its story.
export const CHAIN_KINDS: ReadonlySet<string> = new Set(['step', 'digest-ok', 'digest-mismatch', 'triple-fault', 'nmi-blocked', 'dma-fault', 'reset', 'fault']);
