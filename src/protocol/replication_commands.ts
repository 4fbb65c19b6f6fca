/** The two commands a replication client sends to start its stream (MariaDB GTID mode). */
import { Command } from './constants.js';

/** COM_REGISTER_SLAVE: server_id, host, user, password (1-byte lengths), port, rank, master_id. */
export function registerSlavePayload(serverId: number, user: string): Buffer {
  const host = Buffer.from('wirecache');
  const name = Buffer.from(user.slice(0, 255));
  const out = Buffer.alloc(1 + 4 + 1 + host.length + 1 + name.length + 1 + 2 + 4 + 4);
  let at = 0;
  out[at++] = Command.REGISTER_SLAVE;
  out.writeUInt32LE(serverId, at);
  at += 4;
  out[at++] = host.length;
  host.copy(out, at);
  at += host.length;
  out[at++] = name.length;
  name.copy(out, at);
  at += name.length;
  out[at++] = 0; // no password
  out.writeUInt16LE(0, at); // port
  at += 2;
  out.writeUInt32LE(0, at); // replication rank
  at += 4;
  out.writeUInt32LE(0, at); // master id
  return out;
}

/** COM_BINLOG_DUMP: position 4, flags 0, server_id, empty file name (GTID mode through @slave_connect_state). */
export function binlogDumpPayload(serverId: number): Buffer {
  const out = Buffer.alloc(1 + 4 + 2 + 4);
  out[0] = Command.BINLOG_DUMP;
  out.writeUInt32LE(4, 1);
  out.writeUInt16LE(0, 5);
  out.writeUInt32LE(serverId, 7);
  return out;
}
