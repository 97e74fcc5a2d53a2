/**
 * The environment a child process (s5cmd, fio, the training program) starts with: a short
 * allowlist of the worker's own variables (where programs live, the user, locale, time zone, temp
 * folder) plus what the caller hands over on purpose. Nothing else crosses: never the Temporal API
 * key, TLS key paths, the worker's AWS profile or anything a later variable might hold.
 *
 * @module
 */

/** Variables a child inherits from the worker, when set. */
export const CHILD_ENV_ALLOWLIST: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR'];

/** Names of variables that never cross to a child from the worker's environment, whatever the allowlist says. */
const NEVER = /^TEMPORAL_|API_KEY|SECRET|PASSWORD|TOKEN|TLS/i;

/**
 * The allowlisted part of `base` (`LC_*` locale variables too), then `extra` on top (the caller's
 * deliberate additions, e.g. s5cmd's resolved credentials, a training run's declared variables).
 */
export function childEnv(base: Record<string, string | undefined>, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || NEVER.test(name)) continue;
    if (CHILD_ENV_ALLOWLIST.includes(name) || name.startsWith('LC_')) env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) if (value !== undefined) env[name] = value;
  return env;
}
