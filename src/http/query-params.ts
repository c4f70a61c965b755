import { GraphQLError } from 'graphql';
import type { GraphQLParams, Plugin } from 'graphql-yoga';

// Yoga reads a GET request's operation (and a form-encoded POST's) from URL parameters and JSON.parses
// `variables` and `extensions` without catching: a value that is not JSON reached the client as a masked
// "Unexpected error." (INTERNAL_SERVER_ERROR). It is the client's mistake, so it is answered as one: 400,
// BAD_REQUEST, naming the parameter. Parameters of the wrong JSON type are still refused by Yoga's own check.

function jsonParameter(params: URLSearchParams, name: 'variables' | 'extensions'): unknown {
  const text = params.get(name) || undefined;
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new GraphQLError(`the "${name}" parameter is not valid JSON: ${(error as Error).message}`, {
      extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
    });
  }
}

function paramsFrom(params: URLSearchParams): GraphQLParams {
  return {
    operationName: params.get('operationName') || undefined,
    query: params.get('query') || undefined,
    variables: jsonParameter(params, 'variables') as GraphQLParams['variables'],
    extensions: jsonParameter(params, 'extensions') as GraphQLParams['extensions'],
  };
}

// The same match as Yoga's own form parser, so that exactly the requests it would parse are parsed here.
function isFormEncoded(request: Request): boolean {
  const type = request.headers.get('content-type')?.split(',')[0];
  const form = 'application/x-www-form-urlencoded';
  return request.method === 'POST' && (type === form || !!type?.startsWith(`${form};`));
}

/** Replaces Yoga's URL-parameter parsers (GET, form-encoded POST) with ones that answer bad JSON with a 400. */
export function strictUrlParams(): Plugin {
  return {
    onRequestParse({ request, url, setRequestParser }) {
      if (request.method === 'GET') setRequestParser(() => paramsFrom(url.searchParams));
      else if (isFormEncoded(request)) setRequestParser(async (req) => paramsFrom(new URLSearchParams(await req.text())));
    },
  };
}
