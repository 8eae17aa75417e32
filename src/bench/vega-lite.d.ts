// vega-lite names its types only in package.json "exports", which this project's module resolution (node10,
// for CommonJS) does not read; vega's own index.d.ts declares its module the same way.
declare module 'vega-lite' {
  export * from 'vega-lite/build/index';
}
