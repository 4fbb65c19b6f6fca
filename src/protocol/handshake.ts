import { Capability } from './constants.js';
import { PayloadReader, ProtocolError } from './payload_reader.js';
import { PayloadWriter } from './payload_writer.js';

/** The server's first packet (Protocol::HandshakeV10). */
export interface HandshakeV10 {
  protocolVersion: number;
  /** As sent; MariaDB prefixes "5.5.5-" so old clients see a 5.5-compatible version. */
  serverVersion: string;
  connectionId: number;
  /** The 20-byte scramble (both parts of auth-plugin-data, without the trailing NUL). */
  scramble: Buffer;
  /** Lower 32 capability bits. */
  capabilities: number;
  /** MariaDB extended capability bits (32..63), zero for MySQL servers. */
  mariaDbCapabilities: number;
  characterSet: number;
  status: number;
  authPluginName: string;
}

export function parseHandshakeV10(payload: Buffer): HandshakeV10 {
  const r = new PayloadReader(payload);
  const protocolVersion = r.u8();
  if (protocolVersion !== 10) throw new ProtocolError(`unsupported handshake protocol version ${protocolVersion}`);
  const serverVersion = r.nulString();
  const connectionId = r.u32();
  const part1 = r.bytes(8);
  r.skip(1);
  let capabilities = r.u16();
  let characterSet = 0;
  let status = 0;
  let mariaDbCapabilities = 0;
  let authPluginName = '';
  let part2: Buffer = Buffer.alloc(0);
  if (r.remaining > 0) {
    characterSet = r.u8();
    status = r.u16();
    capabilities = (capabilities | (r.u16() << 16)) >>> 0;
    const authDataLength = r.u8();
    r.skip(6);
    const ext = r.u32();
    if (!(capabilities & Capability.CLIENT_MYSQL)) mariaDbCapabilities = ext;
    if (capabilities & Capability.SECURE_CONNECTION) {
      const len2 = Math.max(13, authDataLength - 8);
      part2 = r.bytes(Math.min(len2, r.remaining));
      if (part2.length > 0 && part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
    }
    if (capabilities & Capability.PLUGIN_AUTH) authPluginName = r.nulOrEofString();
  }
  return {
    protocolVersion,
    serverVersion,
    connectionId,
    scramble: Buffer.concat([part1, part2]),
    capabilities,
    mariaDbCapabilities,
    characterSet,
    status,
    authPluginName,
  };
}

export function buildHandshakeV10(h: Omit<HandshakeV10, 'protocolVersion'>): Buffer {
  if (h.scramble.length !== 20) throw new RangeError('scramble must be 20 bytes');
  const w = new PayloadWriter(128)
    .u8(10)
    .nulString(h.serverVersion)
    .u32(h.connectionId)
    .bytes(h.scramble.subarray(0, 8))
    .u8(0)
    .u16(h.capabilities & 0xffff)
    .u8(h.characterSet)
    .u16(h.status)
    .u16((h.capabilities >>> 16) & 0xffff)
    .u8(21)
    .zeros(6);
  // MariaDB puts its extended capabilities in the last 4 of the 10 reserved bytes.
  w.u32(h.capabilities & Capability.CLIENT_MYSQL ? 0 : h.mariaDbCapabilities);
  w.bytes(h.scramble.subarray(8)).u8(0);
  w.nulString(h.authPluginName);
  return w.finish();
}

/** The client's reply to the handshake (Protocol::HandshakeResponse41). */
export interface HandshakeResponse {
  capabilities: number;
  mariaDbCapabilities: number;
  maxPacketSize: number;
  characterSet: number;
  user: string;
  authResponse: Buffer;
  database: string | null;
  authPluginName: string | null;
  /** Connection attributes in order, as sent (CLIENT_CONNECT_ATTRS). */
  connectAttributes: [string, string][] | null;
}

/** Length of an SSLRequest payload: the first 32 bytes of a HandshakeResponse41. */
export const SSL_REQUEST_LENGTH = 32;

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new PayloadReader(payload);
  const capabilities = r.u32();
  if (!(capabilities & Capability.PROTOCOL_41)) {
    throw new ProtocolError('client does not speak protocol 4.1 (CLIENT_PROTOCOL_41 not set)');
  }
  const maxPacketSize = r.u32();
  const characterSet = r.u8();
  r.skip(19);
  const ext = r.u32();
  const mariaDbCapabilities = capabilities & Capability.CLIENT_MYSQL ? 0 : ext;
  const user = r.nulString();
  let authResponse: Buffer;
  if (capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.lenencBytes();
  else if (capabilities & Capability.SECURE_CONNECTION) authResponse = r.bytes(r.u8());
  else authResponse = r.nulBytes();
  let database: string | null = null;
  if (capabilities & Capability.CONNECT_WITH_DB && r.remaining > 0) database = r.nulOrEofString();
  let authPluginName: string | null = null;
  if (capabilities & Capability.PLUGIN_AUTH && r.remaining > 0) authPluginName = r.nulOrEofString();
  let connectAttributes: [string, string][] | null = null;
  if (capabilities & Capability.CONNECT_ATTRS && r.remaining > 0) connectAttributes = readAttributes(r);
  return {
    capabilities,
    mariaDbCapabilities,
    maxPacketSize,
    characterSet,
    user,
    authResponse: Buffer.from(authResponse),
    database,
    authPluginName,
    connectAttributes,
  };
}

function readAttributes(r: PayloadReader): [string, string][] {
  const total = r.lenenc();
  const end = r.offset + total;
  if (end > r.end) throw new ProtocolError('connection attributes run past the end of the packet');
  const attrs: [string, string][] = [];
  while (r.offset < end) attrs.push([r.lenencString(), r.lenencString()]);
  return attrs;
}

export function buildHandshakeResponse(h: HandshakeResponse): Buffer {
  const w = new PayloadWriter(128)
    .u32(h.capabilities)
    .u32(h.maxPacketSize)
    .u8(h.characterSet)
    .zeros(19)
    .u32(h.capabilities & Capability.CLIENT_MYSQL ? 0 : h.mariaDbCapabilities)
    .nulString(h.user);
  if (h.capabilities & Capability.PLUGIN_AUTH_LENENC_CLIENT_DATA) w.lenencBytes(h.authResponse);
  else if (h.capabilities & Capability.SECURE_CONNECTION) w.u8(h.authResponse.length).bytes(h.authResponse);
  else w.nulString(h.authResponse);
  if (h.capabilities & Capability.CONNECT_WITH_DB) w.nulString(h.database ?? '');
  if (h.capabilities & Capability.PLUGIN_AUTH) w.nulString(h.authPluginName ?? '');
  if (h.capabilities & Capability.CONNECT_ATTRS) {
    const attrs = new PayloadWriter(64);
    for (const [k, v] of h.connectAttributes ?? []) attrs.lenencString(k).lenencString(v);
    w.lenencBytes(attrs.finish());
  }
  return w.finish();
}

/** 0xFE + plugin name + plugin data: the server asks the client to authenticate with another method. */
export interface AuthSwitchRequest {
  pluginName: string;
  pluginData: Buffer;
}

export function parseAuthSwitchRequest(payload: Buffer): AuthSwitchRequest {
  const r = new PayloadReader(payload);
  if (r.u8() !== 0xfe) throw new ProtocolError('not an AuthSwitchRequest');
  const pluginName = r.nulOrEofString();
  let pluginData = r.restBytes();
  if (pluginData.length > 0 && pluginData[pluginData.length - 1] === 0) pluginData = pluginData.subarray(0, pluginData.length - 1);
  return { pluginName, pluginData: Buffer.from(pluginData) };
}

/** The SSLRequest a client sends before TLS: the first 32 bytes of a handshake response, with CLIENT_SSL set. */
export function buildSslRequest(h: { capabilities: number; maxPacketSize: number; characterSet: number; mariaDbCapabilities: number }): Buffer {
  return new PayloadWriter(32)
    .u32((h.capabilities | Capability.SSL) >>> 0)
    .u32(h.maxPacketSize)
    .u8(h.characterSet)
    .zeros(19)
    .u32(h.capabilities & Capability.CLIENT_MYSQL ? 0 : h.mariaDbCapabilities)
    .finish();
}

export function buildAuthSwitchRequest(pluginName: string, scramble: Buffer): Buffer {
  return new PayloadWriter(64).u8(0xfe).nulString(pluginName).bytes(scramble).u8(0).finish();
}

/** COM_CHANGE_USER, as the client sends it. */
export interface ChangeUserRequest {
  user: string;
  authResponse: Buffer;
  database: string;
  characterSet: number | null;
  authPluginName: string | null;
  connectAttributes: [string, string][] | null;
}

export function parseChangeUser(payload: Buffer, capabilities: number): ChangeUserRequest {
  const r = new PayloadReader(payload);
  r.u8(); // COM_CHANGE_USER
  const user = r.nulString();
  const authResponse = capabilities & Capability.SECURE_CONNECTION ? r.bytes(r.u8()) : r.nulBytes();
  const database = r.remaining > 0 ? r.nulOrEofString() : '';
  const characterSet = r.remaining >= 2 ? r.u16() : null;
  const authPluginName = capabilities & Capability.PLUGIN_AUTH && r.remaining > 0 ? r.nulOrEofString() : null;
  const connectAttributes = capabilities & Capability.CONNECT_ATTRS && r.remaining > 0 ? readAttributes(r) : null;
  return { user, authResponse: Buffer.from(authResponse), database, characterSet, authPluginName, connectAttributes };
}
