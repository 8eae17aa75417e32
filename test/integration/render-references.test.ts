import { JobConfigurationError } from '../../src/errors';
import { createPrefectClient, type PrefectClient } from '../../src/prefect/client';
import defaultTemplate from '../../src/render/default-base-job-template.json';
import { prepareJobConfiguration } from '../../src/render/job-configuration';
import type { BaseJobTemplate, JsonObject } from '../../src/render/types';
import { arrangeDeployment, prefectRaw, scheduleFlowRun, stackUrls, uniqueName } from '../harness/env';

/**
 * Block documents and variables created on the real Prefect server, referenced from a pool's template
 * and a deployment's and flow run's job variables, resolved through the Prefect client.
 */
let prefect: PrefectClient;

beforeAll(() => {
  prefect = createPrefectClient(
    { apiUrl: stackUrls().prefectApiUrl, timeoutMs: 15_000, maxRetries: 3 },
    { kind: 'none' },
    { backoffBaseMs: 250 },
  );
});

afterEach(() => {
  jest.restoreAllMocks();
});

/** A block type with the given schema properties, and one document of it. */
async function createBlock(
  slug: string,
  properties: JsonObject,
  name: string,
  data: JsonObject,
  secretFields: string[] = [],
): Promise<string> {
  const blockType = await prefectRaw<{ id: string }>('POST', '/block_types/', { name: slug, slug });
  const schema = await prefectRaw<{ id: string }>('POST', '/block_schemas/', {
    block_type_id: blockType.id,
    fields: { title: slug, type: 'object', properties, secret_fields: secretFields },
  });
  const doc = await prefectRaw<{ id: string }>('POST', '/block_documents/', {
    name,
    block_type_id: blockType.id,
    block_schema_id: schema.id,
    data,
  });
  return doc.id;
}

async function render(deploymentId: string, flowRunId: string, poolName: string) {
  const flowRun = await prefect.readFlowRun(flowRunId);
  const deployment = await prefect.readDeployment(deploymentId);
  const flow = await prefect.readFlow(flowRun.flow_id);
  const pool = await prefect.readWorkPool(poolName);
  if (!pool) throw new Error(`pool ${poolName} is missing`);
  return prepareJobConfiguration({
    template: pool.base_job_template as BaseJobTemplate,
    deployment,
    flowRun,
    flow,
    workPool: { id: pool.id, name: pool.name },
    workerName: 'render-references test',
    apiUrl: stackUrls().prefectApiUrl,
    containerCredential: { kind: 'none' },
    references: prefect,
  });
}

describe('template references against the real Prefect server', () => {
  it('resolves $ref blocks, prefect.blocks and prefect.variables placeholders, reading each once', async () => {
    const registrySlug = uniqueName('launcher-string');
    await createBlock(registrySlug, { value: { type: 'string' } }, 'registry', {
      value: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
    });
    const credsSlug = uniqueName('launcher-creds');
    const credsId = await createBlock(
      credsSlug,
      {
        region_name: { type: 'string' },
        aws_secret_access_key: { type: 'string', format: 'password', writeOnly: true },
      },
      'prod',
      { region_name: 'eu-west-1', aws_secret_access_key: 'secret-value' },
      ['aws_secret_access_key'],
    );
    const variable = uniqueName('launcher_cluster').replace(/-/g, '_');
    await prefectRaw('POST', '/variables/', { name: variable, value: 'prod-cluster' });
    const settings = uniqueName('launcher_settings').replace(/-/g, '_');
    await prefectRaw('POST', '/variables/', { name: settings, value: { retries: 3, debug: false } });

    // The UI stores a pool's default credentials as a block reference in the variables schema.
    const template = structuredClone(defaultTemplate) as unknown as BaseJobTemplate;
    const properties = template.variables.properties ?? {};
    properties.aws_credentials = {
      ...properties.aws_credentials,
      default: { $ref: { block_document_id: credsId } },
    };
    const { pool, deploymentId } = await arrangeDeployment({
      baseJobTemplate: template,
      jobVariables: {
        image: `{{ prefect.blocks.${registrySlug}.registry }}/flows:1`,
        cluster: `{{ prefect.variables.${variable} }}`,
        env: {
          REGISTRY: `{{ prefect.blocks.${registrySlug}.registry }}`,
          SETTINGS: `{{ prefect.variables.${settings} }}`,
        },
      },
    });
    const run = await scheduleFlowRun(deploymentId, {
      jobVariables: { env: { MISSING: '{{ prefect.variables.launcher_no_such_variable }}' } },
    });

    const byName = jest.spyOn(prefect, 'readBlockDocumentDataByName');
    const byId = jest.spyOn(prefect, 'readBlockDocumentData');
    const variables = jest.spyOn(prefect, 'readVariableValue');
    const config = await render(deploymentId, run.id, pool);

    expect(config.aws_credentials).toEqual({
      region_name: 'eu-west-1',
      aws_secret_access_key: 'secret-value',
    });
    expect(config.task_definition.containerDefinitions).toEqual([
      { image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/flows:1' },
    ]);
    expect(config.cluster).toBe('prod-cluster');
    expect(config.env).toMatchObject({
      REGISTRY: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      SETTINGS: "{'retries': 3, 'debug': False}",
      MISSING: '',
    });
    expect(byName.mock.calls).toEqual([[registrySlug, 'registry']]);
    expect(byId.mock.calls).toEqual([[credsId]]);
    expect(variables.mock.calls.map(([name]) => name).sort()).toEqual(
      ['launcher_no_such_variable', settings, variable].sort(),
    );
  });

  it('names a deleted block and what to fix', async () => {
    const slug = uniqueName('launcher-string');
    const id = await createBlock(slug, { value: { type: 'string' } }, 'gone', { value: 'x' });
    const { pool, deploymentId } = await arrangeDeployment({
      baseJobTemplate: defaultTemplate,
      jobVariables: { image: `{{ prefect.blocks.${slug}.gone }}` },
    });
    const run = await scheduleFlowRun(deploymentId);
    await prefectRaw('DELETE', `/block_documents/${id}`);

    const rendering = render(deploymentId, run.id, pool);
    await expect(rendering).rejects.toThrow(JobConfigurationError);
    await expect(rendering).rejects.toThrow(
      `Block not found: 'gone' of type '${slug}'. This block was referenced in the deployment or work pool configuration ({{ prefect.blocks.${slug}.gone }} at job configuration field 'task_definition.containerDefinitions[0].image')`,
    );
  });
});
