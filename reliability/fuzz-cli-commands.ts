/**
 * Every command and subcommand of `trainctl` as the CLI fuzz (fuzz-cli.ts) starts from: a valid
 * command line each, and the flags a mutation may add. Names (projects, runs) are the fuzz's own.
 */
export type Flag = [flag: string, value: string | true];

export interface CliCommand {
  /** `volume create`, `transfer`, … */
  name: string;
  words: string[];
  positionals?: string[];
  flags: Flag[];
  /** Flags of the command that may be added with a fuzzed value (besides the base ones). */
  more?: string[];
  /** Flags never fuzzed: their value is a path this process would write. */
  fixed?: string[];
  /** Flags never dropped: without them the command would act on a name others use (the project `default`). */
  keep?: string[];
}

export function commands(project: string, out: string): CliCommand[] {
  const vol: Flag[] = [
    ['--name', 'fz-vol'],
    ['--size-gib', '8'],
    ['--az', 'us-east-1a'],
  ];
  return [
    { name: '(command)', words: ['volume'], flags: [] },
    {
      name: 'volume create',
      words: ['volume', 'create'],
      flags: vol,
      more: ['--type', '--iops', '--throughput', '--snapshot-id', '--tag', '--attach-instance', '--attach-device', '--if-exists', '--region'],
    },
    { name: 'volume cancel', words: ['volume', 'cancel'], flags: [['--name', 'fz-vol-none']], more: ['--region'] },
    {
      name: 'cleanup plan',
      words: ['cleanup', 'plan'],
      flags: [
        ['--tag', 'team=fz'],
        ['--kind', 'volume'],
        ['--older-than', '7d'],
      ],
      more: ['--id', '--bucket', '--prefix', '--region', '--concurrency', '--cost-project', '--protected-id', '--s3-profile'],
    },
    {
      name: 'cleanup apply',
      words: ['cleanup', 'apply'],
      flags: [
        ['--tag', 'team=fz'],
        ['--yes', true],
      ],
      more: ['--force', '--approval-timeout', '--concurrency', '--snapshot-before-delete', '--id'],
    },
    {
      name: 'cleanup approve',
      words: ['cleanup', 'approve'],
      flags: [
        ['--workflow-id', 'cleanup/fz-none'],
        ['--plan-hash', 'ab'.repeat(32)],
      ],
    },
    {
      name: 'cleanup reject',
      words: ['cleanup', 'reject'],
      flags: [
        ['--workflow-id', 'cleanup/fz-none'],
        ['--reason', 'no'],
      ],
    },
    { name: 'cost show', words: ['cost', 'show'], flags: [['--project', project]], more: ['--by-tag'], keep: ['--project'] },
    {
      name: 'cost budget set',
      words: ['cost', 'budget', 'set'],
      flags: [
        ['--project', project],
        ['--limit-usd', '10'],
      ],
      more: ['--window', '--action', '--tag-filter', '--name'],
      keep: ['--project'],
    },
    {
      name: 'cost rate set',
      words: ['cost', 'rate', 'set'],
      flags: [
        ['--project', project],
        ['--type', 'g5.xlarge'],
        ['--usd-per-hour', '1.2'],
      ],
      more: ['--per-gib'],
      keep: ['--project'],
    },
    {
      name: 'cost reconcile schedule',
      words: ['cost', 'reconcile', 'schedule'],
      flags: [
        ['--project', project],
        ['--regions', 'us-east-1'],
        ['--every', '1h'],
      ],
      keep: ['--project'],
    },
    {
      name: 'cost reconcile now',
      words: ['cost', 'reconcile', 'now'],
      flags: [
        ['--project', project],
        ['--regions', 'us-east-1'],
      ],
      keep: ['--project'],
    },
    {
      name: 'transfer',
      words: ['transfer'],
      positionals: ['s3://fz-bucket/data/', `${out}/dst/`],
      flags: [['--concurrency', '2']],
      more: [
        '--include',
        '--exclude',
        '--sync',
        '--delete',
        '--max-delete',
        '--file-concurrency',
        '--part-size-mib',
        '--staging',
        '--region',
        '--compress',
        '--engine',
        '--dry-run',
      ],
    },
    {
      name: 'data recommend',
      words: ['data', 'recommend'],
      flags: [
        ['--dataset-gib', '100'],
        ['--files', '1000'],
        ['--instance-type', 'g5.xlarge'],
      ],
      more: ['--runs', '--epochs', '--volume-type', '--volume-gib', '--init-rate', '--cache-gib', '--vcpus', '--s3-prefixes', '--network-gbps'],
    },
    {
      name: 'data loader',
      words: ['data', 'loader'],
      flags: [
        ['--strategy', 'LocalCache'],
        ['--out', `${out}/train_data.py`],
        ['--path', 'data'],
      ],
      more: ['--vcpus', '--batch-size', '--instance-type', '--s3-uri', '--region'],
      fixed: ['--out'],
    },
    {
      name: 'data prewarm',
      words: ['data', 'prewarm'],
      flags: [
        ['--host', 'fz-host'],
        ['--strategy', 'DirectS3'],
        ['--s3-uri', 's3://fz-bucket/data/'],
      ],
      more: [
        '--device',
        '--cache-dir',
        '--capacity-gib',
        '--dataset-dir',
        '--verify',
        '--concurrency',
        '--block-kib',
        '--heartbeat-timeout',
        '--timeout-minutes',
        '--cost-project',
      ],
    },
    { name: 'run start', words: ['run', 'start'], flags: [['-f', `${out}/run.json`]], more: ['--set', '--wait'] },
    { name: 'run status', words: ['run', 'status'], positionals: ['fz-run-none'], flags: [] },
    { name: 'run watch', words: ['run', 'watch'], positionals: ['fz-run-none'], flags: [] },
    { name: 'run list', words: ['run', 'list'], flags: [['--project', project]] },
    { name: 'run stop', words: ['run', 'stop'], positionals: ['fz-run-none'], flags: [['--reason', 'fuzz']] },
    { name: 'run checkpoint', words: ['run', 'checkpoint'], positionals: ['fz-run-none'], flags: [] },
    { name: 'run cancel', words: ['run', 'cancel'], positionals: ['fz-run-none'], flags: [] },
    { name: 'run logs', words: ['run', 'logs'], positionals: ['fz-run-none'], flags: [], more: ['--follow'] },
  ];
}
