import { type DescField, type DescMethod, type DescService, getOption } from "@bufbuild/protobuf";
import { http as httpRule } from "#gen/google/api/annotations_pb.js";
import type { HttpRule } from "#gen/google/api/http_pb.js";

/** The verbs a google.api.http rule binds (its `custom` patterns are refused). */
export type HttpVerb = "get" | "post" | "put" | "patch" | "delete";

/** One binding of a method's google.api.http annotation (the rule itself or one of its additional_bindings). */
export interface HttpRoute {
  method: DescMethod;
  verb: HttpVerb;
  /** The annotation's path template, e.g. "/products/{id}". */
  template: string;
  /** Express form of the template, e.g. "/products/:id". */
  expressPath: string;
  /** The request fields named by the template's variables, in order. */
  pathFields: DescField[];
  /** Request field read from the body ("*" for the whole request), or "" for none. */
  body: string;
  /** The field `body` names; undefined for "*" and "". */
  bodyField: DescField | undefined;
  /** Response field sent as the body, or "" for the whole response. */
  responseBody: string;
  /** The field `responseBody` names; undefined for "". */
  responseField: DescField | undefined;
}

/** A literal path segment (empty only as the last one: a trailing slash), or a `{field}` variable. */
const SEGMENT = /^(?:[A-Za-z0-9._~-]*|\{([A-Za-z_][A-Za-z0-9_]*)\})$/;

/**
 * Every HTTP binding of the service's annotated methods, in declaration order: the one source of
 * the REST routes and of their OpenAPI document. Throws, naming the method, for what the transcoder
 * cannot serve (streaming methods, custom verbs, `{field.path}` or `{field=pattern}` variables,
 * fields that do not exist), so that a wrong annotation fails at startup and not per request.
 */
export function httpRoutes(service: DescService): HttpRoute[] {
  return service.methods.flatMap((method) => {
    const rule: HttpRule = getOption(method, httpRule);
    if (rule.pattern.case === undefined) return [];
    if (method.methodKind !== "unary") {
      throw new Error(`${method.parent.typeName}.${method.name}: only unary methods can have an HTTP binding`);
    }
    return [rule, ...rule.additionalBindings].map((binding) => toRoute(method, binding));
  });
}

function toRoute(method: DescMethod, rule: HttpRule): HttpRoute {
  const where = `${method.parent.typeName}.${method.name}`;
  const { pattern } = rule;
  if (pattern.case === undefined || pattern.case === "custom") {
    throw new Error(`${where}: HTTP bindings need one of get, put, post, delete or patch`);
  }
  const template = pattern.value;
  const segments = template.split("/");
  if (segments[0] !== "" || segments.length < 2) throw new Error(`${where}: path "${template}" must start with "/"`);
  const pathFields: DescField[] = [];
  segments.slice(1).forEach((segment, index, rest) => {
    const match = SEGMENT.exec(segment);
    if (!match || (segment === "" && index < rest.length - 1)) {
      throw new Error(`${where}: unsupported path template "${template}" (segment "${segment}")`);
    }
    if (match[1] !== undefined) {
      const field = requestField(method, match[1], where);
      if (field.fieldKind !== "scalar" && field.fieldKind !== "enum") {
        throw new Error(`${where}: path variable {${field.name}} must name a scalar or enum field`);
      }
      pathFields.push(field);
    }
  });
  const bodyField = rule.body === "" || rule.body === "*" ? undefined : requestField(method, rule.body, where);
  let responseField: DescField | undefined;
  if (rule.responseBody !== "") {
    responseField = method.output.fields.find((f) => f.name === rule.responseBody);
    if (!responseField) throw new Error(`${where}: response_body "${rule.responseBody}" is not a response field`);
  }
  return {
    method,
    verb: pattern.case,
    template,
    expressPath: template.replace(/\{(\w+)\}/g, ":$1"),
    pathFields,
    body: rule.body,
    bodyField,
    responseBody: rule.responseBody,
    responseField,
  };
}

function requestField(method: DescMethod, name: string, where: string): DescField {
  const field = method.input.fields.find((f) => f.name === name);
  if (!field) throw new Error(`${where}: "${name}" is not a field of ${method.input.typeName}`);
  return field;
}
