/**
 * On-demand list prices for what trainctl creates: EC2 instances (Linux, shared tenancy, per
 * instance-hour), EBS volumes, EBS snapshots and S3 Standard (per GB-month), in us-east-1, us-west-2
 * and eu-west-1.
 *
 * Source: the AWS public price pages (aws.amazon.com/ec2/pricing/on-demand, /ebs/pricing,
 * /s3/pricing), list prices as published in 2024–2026; us-east-1 figures cross-checked on
 * 2026-11 against third-party summaries of those pages (g5.xlarge $1.006, t3.micro $0.0104,
 * p5.48xlarge $98.32). The machines this was written on have no internet access, so the table could
 * not be re-read from AWS itself: treat it as a snapshot, override with the tracker's `setRate`
 * update (or `trainctl cost rate set`) where it matters, and prefer the live Pricing API with real AWS.
 *
 * Everything is kept in integer micro-dollars (µ$), so sums and comparisons are exact. A type not in
 * the table is `unpriced` — never silently $0.
 *
 * No I/O, and nothing imported but the cost contract's `ResourceKind`: the cost tracker workflow
 * prices resources with this module, in its sandbox.
 */
import { ResourceKind } from './contracts/cost.js';

export const PRICING_SOURCE = {
  url: 'https://aws.amazon.com/ec2/pricing/on-demand/ ; https://aws.amazon.com/ebs/pricing/ ; https://aws.amazon.com/s3/pricing/',
  asOf: '2026-11',
  note: 'Linux on-demand list prices; snapshot of the public pages, not re-verified online from this machine',
} as const;

/** AWS's own conversion between monthly and hourly prices. */
export const HOURS_PER_MONTH = 730;
export const MICROS_PER_USD = 1_000_000;

export const PRICED_REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'] as const;
export type PricedRegion = (typeof PRICED_REGIONS)[number];

/** USD per instance-hour. */
const US_INSTANCES: Record<string, number> = {
  'g4dn.xlarge': 0.526,
  'g4dn.2xlarge': 0.752,
  'g4dn.4xlarge': 1.204,
  'g4dn.8xlarge': 2.176,
  'g4dn.12xlarge': 3.912,
  'g4dn.16xlarge': 4.352,
  'g5.xlarge': 1.006,
  'g5.2xlarge': 1.212,
  'g5.4xlarge': 1.624,
  'g5.8xlarge': 2.448,
  'g5.12xlarge': 5.672,
  'g5.48xlarge': 16.288,
  'g6.xlarge': 0.8048,
  'g6.2xlarge': 0.9776,
  'g6.4xlarge': 1.3232,
  'g6.12xlarge': 4.6016,
  'g6.48xlarge': 13.3504,
  'p3.2xlarge': 3.06,
  'p3.8xlarge': 12.24,
  'p3.16xlarge': 24.48,
  'p4d.24xlarge': 32.7726,
  'p5.48xlarge': 98.32,
  'trn1.2xlarge': 1.34375,
  'trn1.32xlarge': 21.5,
  't3.micro': 0.0104,
  't3.small': 0.0208,
  't3.medium': 0.0416,
  't3.large': 0.0832,
  't3.xlarge': 0.1664,
  'm5.large': 0.096,
  'm5.xlarge': 0.192,
  'm5.2xlarge': 0.384,
  'm5.4xlarge': 0.768,
  'c5.large': 0.085,
  'c5.xlarge': 0.17,
  'c5.2xlarge': 0.34,
  'c5.4xlarge': 0.68,
};

/** eu-west-1 (Ireland). trn1 is not offered there, so it stays unpriced. */
const EU_WEST_1_INSTANCES: Record<string, number> = {
  'g4dn.xlarge': 0.587,
  'g4dn.2xlarge': 0.838,
  'g4dn.4xlarge': 1.339,
  'g4dn.8xlarge': 2.421,
  'g4dn.12xlarge': 4.362,
  'g4dn.16xlarge': 4.843,
  'g5.xlarge': 1.123,
  'g5.2xlarge': 1.353,
  'g5.4xlarge': 1.813,
  'g5.8xlarge': 2.733,
  'g5.12xlarge': 6.332,
  'g5.48xlarge': 18.184,
  'g6.xlarge': 0.8985,
  'g6.2xlarge': 1.0913,
  'g6.4xlarge': 1.4772,
  'g6.12xlarge': 5.1371,
  'g6.48xlarge': 14.9043,
  'p3.2xlarge': 3.305,
  'p3.8xlarge': 13.22,
  'p3.16xlarge': 26.44,
  'p4d.24xlarge': 35.3959,
  'p5.48xlarge': 107.7,
  't3.micro': 0.0114,
  't3.small': 0.0228,
  't3.medium': 0.0456,
  't3.large': 0.0912,
  't3.xlarge': 0.1824,
  'm5.large': 0.107,
  'm5.xlarge': 0.214,
  'm5.2xlarge': 0.428,
  'm5.4xlarge': 0.856,
  'c5.large': 0.096,
  'c5.xlarge': 0.192,
  'c5.2xlarge': 0.384,
  'c5.4xlarge': 0.768,
};

const INSTANCES: Record<PricedRegion, Record<string, number>> = {
  'us-east-1': US_INSTANCES,
  'us-west-2': US_INSTANCES,
  'eu-west-1': EU_WEST_1_INSTANCES,
};

/** USD per GB-month, and per provisioned IOPS-month / MiB/s-month above what the type includes. */
interface StoragePrices {
  gp2: number;
  gp3: number;
  gp3IopsMonth: number;
  gp3ThroughputMonth: number;
  io1: number;
  io1IopsMonth: number;
  io2: number;
  /** io2 IOPS are tiered: up to 32,000, 32,001–64,000, above 64,000. */
  io2IopsTiers: readonly [number, number, number];
  st1: number;
  sc1: number;
  snapshot: number;
  s3Standard: number;
}

const US_STORAGE: StoragePrices = {
  gp2: 0.1,
  gp3: 0.08,
  gp3IopsMonth: 0.005,
  gp3ThroughputMonth: 0.04,
  io1: 0.125,
  io1IopsMonth: 0.065,
  io2: 0.125,
  io2IopsTiers: [0.065, 0.0455, 0.03185],
  st1: 0.045,
  sc1: 0.015,
  snapshot: 0.05,
  s3Standard: 0.023,
};

const STORAGE: Record<PricedRegion, StoragePrices> = {
  'us-east-1': US_STORAGE,
  'us-west-2': US_STORAGE,
  'eu-west-1': {
    gp2: 0.11,
    gp3: 0.088,
    gp3IopsMonth: 0.0055,
    gp3ThroughputMonth: 0.044,
    io1: 0.138,
    io1IopsMonth: 0.072,
    io2: 0.138,
    io2IopsTiers: [0.072, 0.0504, 0.0353],
    st1: 0.05,
    sc1: 0.0168,
    snapshot: 0.05,
    s3Standard: 0.023,
  },
};

/** gp3's baseline performance, included in the GB-month price. */
export const GP3_FREE = { iops: 3_000, throughputMiBps: 125 } as const;

export { ResourceKind };

/** What determines a resource's price. */
export interface PriceSpec {
  kind: ResourceKind;
  /** Instance type (`g5.xlarge`), volume type (`gp3`), or `standard` for snapshots and S3. */
  type: string;
  region: string;
  sizeGiB?: number | undefined;
  iops?: number | undefined;
  throughputMiBps?: number | undefined;
}

export type PriceQuote = { priced: true; microUsdPerHour: number; basis: string } | { priced: false; reason: string };

export function usdToMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

/** µ$ as dollars rounded to the cent (what a person reads). */
export function microsToUsd(micros: number): number {
  return Math.round(micros / 10_000) / 100;
}

function isPricedRegion(region: string): region is PricedRegion {
  return (PRICED_REGIONS as readonly string[]).includes(region);
}

function io2IopsMonthly(iops: number, tiers: readonly [number, number, number]): number {
  const t1 = Math.min(iops, 32_000);
  const t2 = Math.min(Math.max(iops - 32_000, 0), 32_000);
  const t3 = Math.max(iops - 64_000, 0);
  return t1 * tiers[0] + t2 * tiers[1] + t3 * tiers[2];
}

function monthlyToQuote(usdPerMonth: number, basis: string): PriceQuote {
  return { priced: true, microUsdPerHour: Math.round((usdPerMonth * MICROS_PER_USD) / HOURS_PER_MONTH), basis };
}

/**
 * The on-demand hourly price of one resource, in integer µ$ per hour: instances per hour, storage
 * per GB-month ÷ 730. Transfers are priced per GB moved, not per hour, so they are `unpriced` here
 * unless the caller gives an hourly rate.
 */
export function quote(spec: PriceSpec): PriceQuote {
  if (!isPricedRegion(spec.region)) return { priced: false, reason: `no prices for region ${spec.region}` };
  const region = spec.region;
  switch (spec.kind) {
    case 'instance': {
      const usd = INSTANCES[region][spec.type];
      return usd === undefined
        ? { priced: false, reason: `no on-demand price for instance type ${spec.type} in ${region}` }
        : { priced: true, microUsdPerHour: usdToMicros(usd), basis: `${spec.type} on-demand $${usd}/h in ${region}` };
    }
    case 'volume': {
      const s = STORAGE[region];
      const size = spec.sizeGiB;
      if (size === undefined) return { priced: false, reason: `volume size unknown` };
      const iops = spec.iops ?? 0;
      switch (spec.type) {
        case 'gp2':
        case 'st1':
        case 'sc1':
          return monthlyToQuote(size * s[spec.type], `${size} GiB ${spec.type} at $${s[spec.type]}/GB-month in ${region}`);
        case 'gp3': {
          const extraIops = Math.max(0, (spec.iops ?? GP3_FREE.iops) - GP3_FREE.iops);
          const extraTp = Math.max(0, (spec.throughputMiBps ?? GP3_FREE.throughputMiBps) - GP3_FREE.throughputMiBps);
          const monthly = size * s.gp3 + extraIops * s.gp3IopsMonth + extraTp * s.gp3ThroughputMonth;
          return monthlyToQuote(monthly, `${size} GiB gp3 at $${s.gp3}/GB-month + ${extraIops} IOPS + ${extraTp} MiB/s above baseline in ${region}`);
        }
        case 'io1':
          return monthlyToQuote(size * s.io1 + iops * s.io1IopsMonth, `${size} GiB io1 + ${iops} IOPS in ${region}`);
        case 'io2':
          return monthlyToQuote(size * s.io2 + io2IopsMonthly(iops, s.io2IopsTiers), `${size} GiB io2 + ${iops} IOPS (tiered) in ${region}`);
        default:
          return { priced: false, reason: `no price for volume type ${spec.type}` };
      }
    }
    case 'snapshot':
    case 's3-storage': {
      const size = spec.sizeGiB;
      if (size === undefined) return { priced: false, reason: `${spec.kind} size unknown` };
      const perGb = spec.kind === 'snapshot' ? STORAGE[region].snapshot : STORAGE[region].s3Standard;
      return monthlyToQuote(size * perGb, `${size} GiB ${spec.kind} at $${perGb}/GB-month in ${region}`);
    }
    case 'transfer':
      return { priced: false, reason: 'transfers are priced per GB moved, not per hour; give hourlyRate to track one' };
  }
}

/** The instance types the table knows in a region (for help text and tests). */
export function knownInstanceTypes(region: PricedRegion): string[] {
  return Object.keys(INSTANCES[region]);
}
