/**
 * Whether an AWS SDK error is throttling that outlasted the SDK's own retries. The codes are those the SDK's
 * retry strategy treats as throttling (EC2 says `RequestLimitExceeded`, ECS `ThrottlingException`).
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
const THROTTLING_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
]);

export function isThrottlingError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const retryable = (err as { $retryable?: { throttling?: boolean } }).$retryable;
  return retryable?.throttling === true || THROTTLING_CODES.has(err.name);
}
