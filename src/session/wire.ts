import { encodePacket, type Packet } from '../protocol/framing.js';

/** A client packet's bytes as they arrived (header included), to send on unchanged. */
export function wireOf(packet: Packet): Buffer {
  return packet.wire ?? encodePacket(packet.payload, packet.seq);
}

/** A name decoded as UTF-8 (handshake, internal queries) re-read as latin1, the way statement text is decoded for the cache. */
export function asLatin1(name: string | null): string | null {
  return name === null ? null : Buffer.from(name, 'utf8').toString('latin1');
}
