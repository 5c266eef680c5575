// A logical CPU: architectural state the kernel model reads and writes
// (general registers, CR3, MSRs, CPUID), its run state, and how INIT, SIPI
// and NMI change it.

export const X86_REGS = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx',
  'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type X86Reg = (typeof X86_REGS)[number];
export type RegisterFile = Record<X86Reg, bigint>;

/**
 * running: executing; halted: HLT with interrupts possibly masked (an NMI
 * still wakes it); wait-for-sipi: after INIT, only a SIPI starts it;
 * shutdown: triple fault, only a reset helps.
 */
export type CpuRunState = 'running' | 'halted' | 'wait-for-sipi' | 'shutdown';

export type CpuidLeaf = readonly [eax: number, ebx: number, ecx: number, edx: number];

export function zeroRegisters(): RegisterFile {
  const r = {} as Record<X86Reg, bigint>;
  for (const n of X86_REGS) r[n] = 0n;
  return r;
}

export class Cpu {
  readonly id: number;
  readonly apicId: number;
  readonly isBsp: boolean;
  state: CpuRunState;
  regs: RegisterFile = zeroRegisters();
  /** Physical address of the active top-level page table. */
  cr3 = 0;
  readonly msrs = new Map<number, bigint>();
  readonly #cpuid = new Map<string, CpuidLeaf>();
  /** The NMI vector's handler, installed by whatever kernel runs (its IDT). */
  nmiHandler: ((cpu: Cpu) => void) | undefined;
  nmisLatched = 0;
  /** Virtual time of the last WBINVD this CPU executed (-1: never). */
  lastWbinvdNs = -1;
  /** NMIs are held off (the CPU is already in an NMI handler, or in SMM): a new one stays pending. */
  nmiBlocked = false;
  /**
   * Consulted by `wrmsr` when installed (the machine installs one for MSRs
   * whose writes hardware constrains, such as the RMP MSRs that SNP_EN
   * locks): returns the value to store, or undefined to drop the write
   * silently. `old` is the current value. A platform reset that puts MSRs
   * back clears `msrs` directly and is not filtered.
   */
  msrWriteFilter: ((msr: number, value: bigint, old: bigint) => bigint | undefined) | undefined;

  constructor(id: number, apicId: number, isBsp: boolean) {
    this.id = id;
    this.apicId = apicId;
    this.isBsp = isBsp;
    this.state = isBsp ? 'running' : 'wait-for-sipi';
  }

  setCpuid(leaf: number, subleaf: number, value: CpuidLeaf): void {
    this.#cpuid.set(`${leaf}:${subleaf}`, value);
  }

  cpuid(leaf: number, subleaf = 0): CpuidLeaf {
    return this.#cpuid.get(`${leaf}:${subleaf}`) ?? [0, 0, 0, 0];
  }

  rdmsr(msr: number): bigint {
    return this.msrs.get(msr) ?? 0n;
  }

  wrmsr(msr: number, value: bigint): void {
    const filter = this.msrWriteFilter;
    if (filter !== undefined) {
      const v = filter(msr, value, this.rdmsr(msr));
      if (v === undefined) return;
      this.msrs.set(msr, v);
      return;
    }
    this.msrs.set(msr, value);
  }
}
