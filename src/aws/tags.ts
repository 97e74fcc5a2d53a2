import type { Tag } from '@aws-sdk/client-ec2';

/** EC2's tag list as a plain record (a key-only tag reads as ''). */
export function tagsOf(tags: readonly Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? '';
  return out;
}
