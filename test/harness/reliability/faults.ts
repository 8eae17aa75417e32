import { awsJsonError, type ProxyRule } from '../../../src/local/proxy';

/**
 * The faults the reliability suite injects at the proxies in front of Prefect and moto, by name (the names
 * are what the proxies count). Rates are per matching request; `doomed` runs fail every time while faults
 * are on, so that the paths which need repeated failures (a run returned to Scheduled, a RunTask that
 * exhausts its retries) are taken for certain.
 */

const ANY_PREFECT_ROUTE = /./;

export function prefectFaults(): ProxyRule[] {
  return [
    {
      name: 'Prefect 503',
      path: ANY_PREFECT_ROUTE,
      probability: 0.02,
      fault: { kind: 'status', status: 503, body: { detail: 'Service Unavailable' } },
    },
    {
      name: 'Prefect 429 + Retry-After',
      method: 'POST',
      path: /\/(set_state|get_scheduled_flow_runs|filter)$/,
      probability: 0.02,
      fault: {
        kind: 'status',
        status: 429,
        headers: { 'Retry-After': '1' },
        body: { detail: 'Too Many Requests' },
      },
    },
    {
      name: 'Prefect 500',
      method: 'GET',
      path: /\/flow_runs\/[0-9a-f-]{36}$/,
      probability: 0.005,
      fault: { kind: 'status', status: 500, body: { detail: 'Internal Server Error' } },
    },
    { name: 'Prefect reset', path: ANY_PREFECT_ROUTE, probability: 0.01, fault: { kind: 'reset' } },
    {
      name: 'Prefect reset after the server acted',
      method: 'POST',
      path: /\/(set_state|logs\/)$/,
      probability: 0.02,
      after: true,
      fault: { kind: 'reset' },
    },
    {
      name: 'Prefect reset after the server acted',
      method: 'PATCH',
      path: ANY_PREFECT_ROUTE,
      probability: 0.03,
      after: true,
      fault: { kind: 'reset' },
    },
    {
      name: 'Prefect timeout',
      path: ANY_PREFECT_ROUTE,
      probability: 0.002,
      count: 12,
      fault: { kind: 'timeout' },
    },
    {
      name: 'Prefect timeout after the server acted',
      method: 'POST',
      path: '/flow_runs/{id}/set_state',
      probability: 0.01,
      count: 8,
      after: true,
      fault: { kind: 'timeout' },
    },
    {
      name: 'Prefect slow answer',
      path: ANY_PREFECT_ROUTE,
      probability: 0.03,
      fault: { kind: 'delay', ms: 400 },
    },
  ];
}

/** ECS answers RunTask with 200 and no task when it cannot place one. */
export const NO_MEMORY = {
  kind: 'respond' as const,
  respond: () => ({
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1' },
    body: {
      tasks: [],
      failures: [
        { arn: 'arn:aws:ecs:us-east-1:123456789012:container-instance/none', reason: 'RESOURCE:MEMORY' },
      ],
    },
  }),
};

export function awsFaults(doomed: { startExecution: Set<string>; capacity: Set<string> }): ProxyRule[] {
  const names = (ids: Set<string>) => (body: string) => [...ids].some((id) => body.includes(id));
  return [
    {
      name: 'StartExecution always fails (doomed run)',
      action: 'StartExecution',
      body: names(doomed.startExecution),
      fault: awsJsonError('ServiceUnavailable', 'Service Unavailable', 503),
    },
    {
      name: 'RunTask RESOURCE:MEMORY (doomed run)',
      action: 'RunTask',
      body: names(doomed.capacity),
      fault: NO_MEMORY,
    },
    {
      name: 'StartExecution 500',
      action: 'StartExecution',
      probability: 0.05,
      fault: awsJsonError('InternalFailure', 'Internal Failure', 500),
    },
    {
      name: 'StartExecution ThrottlingException',
      action: 'StartExecution',
      probability: 0.05,
      fault: awsJsonError('ThrottlingException', 'Rate exceeded'),
    },
    {
      name: 'StartExecution reset after it started',
      action: 'StartExecution',
      probability: 0.05,
      after: true,
      fault: { kind: 'reset' },
    },
    { name: 'RunTask RESOURCE:MEMORY', action: 'RunTask', probability: 0.15, fault: NO_MEMORY },
    {
      name: 'RunTask ThrottlingException',
      action: 'RunTask',
      probability: 0.05,
      fault: awsJsonError('ThrottlingException', 'Rate exceeded'),
    },
    {
      name: 'RunTask ServerException',
      action: 'RunTask',
      probability: 0.03,
      fault: awsJsonError('ServerException', 'Service unavailable', 500),
    },
    {
      name: 'RegisterTaskDefinition ThrottlingException',
      action: /^(RegisterTaskDefinition|DescribeTaskDefinition|ListTaskDefinitions)$/,
      probability: 0.05,
      fault: awsJsonError('ThrottlingException', 'Rate exceeded'),
    },
    {
      name: 'sweep AWS 500',
      action: /^(DescribeTasks|DescribeExecution|ListExecutions|StopExecution|StopTask)$/,
      probability: 0.04,
      fault: awsJsonError('InternalFailure', 'Internal Failure', 500),
    },
    {
      name: 'sweep AWS reset',
      action: /^(DescribeTasks|DescribeExecution|ListExecutions)$/,
      probability: 0.03,
      fault: { kind: 'reset' },
    },
    {
      name: 'EC2 503',
      action: /^Describe(Vpcs|Subnets|SecurityGroups)$/,
      // Prepare asks EC2 once per warm container (src/launch/aws-cache.ts), so each ask is hit more often.
      probability: 0.3,
      fault: { kind: 'status', status: 503, body: '' },
    },
    { name: 'AWS slow answer', probability: 0.03, fault: { kind: 'delay', ms: 300 } },
  ];
}
