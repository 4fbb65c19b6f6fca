/** 32-bit FNV-1a over the UTF-16 code units of `text`, as a signed 32-bit integer (mask it for a slot). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
