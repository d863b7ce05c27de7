// Inventory shapes the devices and groups pages both use (as the API
// answers them, see internal/inventory).

export interface Device {
  device_id: string;
  groupId: string;
  manufacturer: string;
  modelNumber: string;
  serialNumber: string;
  firmwareVersion: string;
  endpoint: string;
  ipAddress: string;
  online: boolean;
  lastModifiedTime: string; // RFC 3339
  tags: Record<string, string>;
}

export interface Group {
  groupId: string;
  createdTime: number; // UNIX ms
  lastModifiedTime: number;
  configuration: Record<string, Record<string, any>>;
  tags: Record<string, string>;
}

export interface Sim {
  simId: string;
  name: string;
  ipAddress: string;
  groupId: string;
}

/** groupName is a group's name tag, else its ID. */
export function groupName(g: Group | undefined, id: string): string {
  return g?.tags?.name || id;
}
