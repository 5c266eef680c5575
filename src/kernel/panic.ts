// The panic path with a crash kernel loaded (__crash_kexec): append
// CRASHTIME to VMCOREINFO, save the panicking CPU's registers, stop the
// other CPUs by NMI (each saves its registers into crash_notes and halts),
// then machine_kexec jumps to purgatory on the panicking CPU.

import type { Cpu } from '../platform/cpu/cpu.js';
import { deliverNmi } from '../platform/cpu/ipi.js';
import { NS_PER_MS, NS_PER_S } from '../platform/clock.js';
import type { FirstKernel } from './first-kernel.js';
import { crashSaveCpu } from './crash-notes.js';
import { writeVmcoreinfoNote } from './vmcoreinfo-export.js';
import { Prng } from '../util/prng.js';
import { wbinvd } from '../platform/cpu/wbinvd.js';
import { quiesceInterrupts } from './io-apic-timer.js';
import { snpShutdownOnPanic } from './ccp-shutdown.js';
import { decommissionGuestsOnCrash } from './kvm-snp.js';

export interface PanicSpec {
  cpu: number;
  /** What triggered it; 'sysrq' is echo c > /proc/sysrq-trigger. */
  trigger: 'sysrq' | 'oops';
}

export interface PanicHooks {
  /** Called when the old kernel has written its last byte, just before the jump to purgatory. */
  beforeHandoff?: () => void;
}

/** Wall-clock seconds at virtual time 0, so CRASHTIME looks like a real date and stays reproducible. */
export const EPOCH_AT_POWER_ON = 1_795_439_000;

const PANIC_PID = 1234;

export function panic(k: FirstKernel, spec: PanicSpec, hooks: PanicHooks = {}): void {
  const m = k.machine;
  const cpu = m.cpus[spec.cpu];
  if (cpu === undefined) throw new RangeError(`Cannot panic on CPU ${spec.cpu}: the machine has ${m.cpus.length} CPUs`);
  const message = spec.trigger === 'sysrq' ? 'sysrq triggered crash' : 'Fatal exception';
  if (spec.trigger === 'sysrq') k.log.printk('sysrq: Trigger a crash');
  k.log.printk(`Kernel panic - not syncing: ${message}`);
  k.log.printk(`CPU: ${cpu.id} PID: ${PANIC_PID} Comm: bash Not tainted ${k.profile.release} #1`);
  k.step(`panic on CPU ${cpu.id}: ${message}`, { cpu: cpu.id });
  k.running = false; // interrupts off: no more timers, softirqs or NAPI polls
  m.interrupts.lapic(cpu.id).interruptsEnabled = false;
  cpu.state = 'running';
  setPanicRegisters(k, cpu);

  const image = k.kexecImage;
  if (image === undefined) {
    k.log.printk(`---[ end Kernel panic - not syncing: ${message} ]---`);
    k.step('no crash kernel loaded: the machine stays in the panic loop');
    return;
  }

  // crash_save_vmcoreinfo(): CRASHTIME goes into the note at crash time.
  const crashtime = EPOCH_AT_POWER_ON + Math.floor(m.clock.now / NS_PER_S);
  k.vmcoreinfo.set('CRASHTIME', String(crashtime));
  writeVmcoreinfoNote(k.mem, k.image, k.vmcoreinfo);

  crashSaveCpu(k.mem, cpu, k.crashNotes[cpu.id]!, PANIC_PID);

  // nmi_shootdown_cpus(): crash_nmi_callback on every other CPU, then wait up to a second.
  const others = m.cpus.filter((c) => c !== cpu);
  let stopped = 0;
  for (const other of others) {
    k.setNmiHandler(other, (c) => {
      c.regs.rip = k.image.va('native_safe_halt') + 0x12n;
      crashSaveCpu(k.mem, c, k.crashNotes[c.id]!, 0);
      // kdump_sev_callback(): on an SNP host each stopping CPU flushes its caches.
      if (k.snp.active) wbinvd(c, m.clock.now, m.trace, 'kdump_sev_callback in the NMI shoot-down');
      m.interrupts.lapic(c.id).interruptsEnabled = false;
      c.state = 'halted'; // halt with interrupts off, for good
      c.nmiHandler = () => { /* already stopped */ };
      stopped++;
    });
  }
  for (const other of others) deliverNmi(other, m.trace);
  if (stopped < others.length) m.clock.advance(1000 * NS_PER_MS); // waited for CPUs that never answered
  else m.clock.advance(50_000);
  k.step(`NMI shoot-down: ${stopped} of ${others.length} other CPUs saved registers and halted`, { stopped, others: others.length });

  // The 2024 patches that were not merged: decommission the guests first, so the shutdown below can succeed.
  const decommission = k.config.patches?.find((p) => p.startsWith('snp-kdump-decommission'));
  let shutdownAllowed = true;
  if (decommission !== undefined && k.snp.firmwareInitialized) shutdownAllowed = decommissionGuestsOnCrash(k, cpu, decommission.endsWith('v2'));

  // Panic notifiers (crash_kexec_post_notifiers, forced on SNP hosts): the CCP driver shuts the firmware down.
  if (k.profile.mechanisms.snpPanicShutdown && k.snp.firmwareInitialized && shutdownAllowed) snpShutdownOnPanic(k, cpu.id);

  // native_machine_crash_shutdown(): IO-APIC pins masked, HPET stopped. The IOMMU is left as it is.
  quiesceInterrupts(m);

  // relocate_kernel: with memory encryption on, flush caches so no encrypted line is written back over the new kernel's plaintext.
  if (k.sme.active) m.trace.record(`cpu${cpu.id}`, 'wbinvd', `CPU ${cpu.id}: WBINVD before jumping to the identity-mapped (unencrypted) purgatory`);
  hooks.beforeHandoff?.();
  k.step(`machine_kexec: CPU ${cpu.id} jumps to purgatory at 0x${image.purgatoryPa.toString(16)}`);
  m.entryPoints.execute(cpu, image.purgatoryPa);
}

/** The panicking CPU's registers as the panic path leaves them: in sysrq_handle_crash, on its stack. */
function setPanicRegisters(k: FirstKernel, cpu: Cpu): void {
  const rng = new Prng(k.config.seed, 0x7265 + cpu.id);
  for (const r of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const) {
    cpu.regs[r] = BigInt(rng.nextU32()) << 8n;
  }
  cpu.regs.rip = k.image.va('sysrq_handle_crash') + 0x16n;
  cpu.regs.rsp = 0xffff_c900_0000_0000n + BigInt(cpu.id) * 0x4000n + 0x3e58n;
  cpu.regs.rbp = cpu.regs.rsp + 0x40n;
  cpu.regs.cs = 0x10n;
  cpu.regs.ss = 0x18n;
  cpu.regs.eflags = 0x10046n;
  cpu.regs.orig_rax = 0xffff_ffff_ffff_ffffn;
}
