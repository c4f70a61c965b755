import type { CodegenConfig } from '@graphql-codegen/cli';

const typeConfig = {
  importExtension: '.ts',
  useTypeImports: true,
  enumsAsTypes: true,
  scalars: { DateTime: 'string', JSON: 'unknown', ID: 'string' },
};

// Typed operations checked against the committed schema.graphql: the tests' (test/operations) and the client's
// (src/client/operations.graphql). The client's documents are emitted as strings (documentMode 'string'), so
// that jobql/client needs no graphql-js at run time in a browser: graphql-ws and graphql-sse send the text.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  generates: {
    'test/generated/': {
      documents: ['test/operations/**/*.graphql'],
      preset: 'client',
      presetConfig: { fragmentMasking: false, gqlTagName: 'graphql' },
      config: typeConfig,
    },
    'src/client/generated/': {
      documents: ['src/client/operations.graphql'],
      preset: 'client',
      presetConfig: { fragmentMasking: false, gqlTagName: 'graphql' },
      config: { ...typeConfig, documentMode: 'string' },
    },
  },
  silent: true,
};

export default config;
