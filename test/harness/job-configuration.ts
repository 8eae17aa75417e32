import type { EcsJobConfiguration } from '../../src/render/types';

/**
 * A prepared job configuration as prefect-aws renders its default template without job variables, for
 * tests of the task-definition and RunTask builders; `overrides` replace whole fields.
 */
export function jobConfiguration(overrides: Partial<EcsJobConfiguration> = {}): EcsJobConfiguration {
  return {
    command: 'prefect flow-run execute',
    env: {},
    labels: {},
    name: null,
    task_definition: { containerDefinitions: [{}] },
    task_run_request: { launchType: 'FARGATE', overrides: { containerOverrides: [{}] } },
    cluster: null,
    container_name: null,
    vpc_id: null,
    network_configuration: {},
    configure_cloudwatch_logs: null,
    cloudwatch_logs_options: {},
    cloudwatch_logs_prefix: null,
    execution_role_arn: null,
    auto_deregister_task_definition: false,
    match_latest_revision_in_family: false,
    prefect_api_key_secret_arn: null,
    prefect_api_auth_string_secret_arn: null,
    aws_credentials: null,
    ...overrides,
  };
}
