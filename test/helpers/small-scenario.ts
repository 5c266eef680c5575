// A small, fast scenario for tests: 1 GiB, 2 CPUs, one NIC.
import { scenarioSchema, type Scenario, type ScenarioInput } from '../../src/scenario/schema.js';

export function smallScenario(over: Partial<ScenarioInput> = {}): Scenario {
  const base: ScenarioInput = {
    name: 'small-host',
    seed: 7,
    machine: { memory: '1G', cpus: 2, devices: [{ kind: 'rx-nic', name: 'nic0', bdf: '00:03.0', packetInterval: '100us', ringEntries: 64 }] },
    firstKernel: { profile: 'linux-6.1', cmdline: 'root=/dev/vda1 ro crashkernel=160M' },
    crashKernel: { profile: 'linux-6.1', cmdline: 'root=/dev/vda1 irqpoll nr_cpus=1 reset_devices', initrdSize: '8M', minMemory: '96M' },
    workload: { pages: 2000 },
    panic: { after: '200ms', cpu: 1, trigger: 'sysrq' },
  };
  return scenarioSchema.parse({ ...base, ...over });
}
