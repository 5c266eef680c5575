// Machine presets: named machines a scenario can start from (machine.preset),
// so files say only what differs.

export const MACHINE_PRESETS = {
  'plain-host': {
    memory: '8G',
    cpus: 4,
    devices: [{ kind: 'rx-nic', name: 'nic0', bdf: '00:03.0', packetInterval: '100us', ringEntries: 256 }],
  },
  'small-host': {
    memory: '1G',
    cpus: 2,
    devices: [{ kind: 'rx-nic', name: 'nic0', bdf: '00:03.0', packetInterval: '100us', ringEntries: 64 }],
  },
  'large-host': {
    memory: '1T',
    cpus: 4,
    devices: [{ kind: 'rx-nic', name: 'nic0', bdf: '00:03.0', packetInterval: '100us', ringEntries: 256 }],
  },
} as const;

export const MACHINE_PRESET_NAMES = Object.keys(MACHINE_PRESETS) as [keyof typeof MACHINE_PRESETS, ...(keyof typeof MACHINE_PRESETS)[]];
