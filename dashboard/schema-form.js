// The create form's input editor: a real form for a kind whose input JSON Schema (Query.kinds, from zod) is an
// object of simple fields, with a "Raw JSON" toggle; the raw JSON textarea alone for anything else. The form is a
// convenience, not the check: the server validates every input against the kind's schema and says what is wrong.
import { fill, h } from './dom.js';

const SIMPLE_TYPES = new Set(['string', 'number', 'integer', 'boolean']);
// String formats with an HTML input type that produces the same text; any other format is a text field.
const FORMAT_TYPES = { email: 'email', uri: 'url', date: 'date' };

/** The schema's fields, [{ name, schema, required }], when a form can represent it exactly; else null. */
export function formFields(schema) {
  if (schema?.type !== 'object' || !schema.properties || typeof schema.properties !== 'object') return null;
  // Extra keys (additionalProperties allowed or typed), or combinators at the top, have no field to go in.
  if (![undefined, false].includes(schema.additionalProperties)) return null;
  if (schema.anyOf || schema.oneOf || schema.allOf || schema.patternProperties) return null;
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties).map(([name, property]) => ({
    name,
    // A constant (z.literal) is a choice of one.
    schema: property?.const === undefined ? property : { ...property, enum: [property.const] },
    required: required.has(name),
  }));
  return fields.length > 0 && fields.every((field) => isSimple(field.schema)) ? fields : null;
}

function isSimple(property) {
  if (!property || typeof property !== 'object' || property.anyOf || property.oneOf || property.allOf) return false;
  if (Array.isArray(property.enum)) {
    return property.enum.length > 0 && property.enum.every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)));
  }
  return SIMPLE_TYPES.has(property.type);
}

/**
 * An HTML pattern only where it means the same as the schema's. The browser anchors it at both ends, the schema
 * does not: so only a pattern already anchored, with no alternation (in "^a|b$" each anchor binds one branch),
 * and valid with the v flag the browser compiles it with.
 */
function htmlPattern(pattern) {
  if (typeof pattern !== 'string' || !pattern.startsWith('^') || !pattern.endsWith('$') || pattern.endsWith('\\$')) return undefined;
  if (pattern.includes('|')) return undefined;
  try {
    new RegExp(pattern, 'v');
    return pattern;
  } catch {
    return undefined;
  }
}

/** One field's control: { control, read() → value or undefined (omit), write(value) → whether it fits }. */
function control({ name, schema, required }) {
  const common = { name, 'aria-required': required ? 'true' : undefined };
  if (Array.isArray(schema.enum)) return enumControl(schema, common, required);
  if (schema.type === 'boolean') return booleanControl(schema, common, required);
  const numeric = schema.type === 'number' || schema.type === 'integer';
  const input = h('input', {
    ...common,
    type: numeric ? 'number' : (FORMAT_TYPES[schema.format] ?? 'text'),
    // An empty required string is a valid value ("" is sent) unless the schema asks for a length.
    required: required && (numeric || schema.minLength > 0),
    min: numeric ? schema.minimum : undefined,
    max: numeric ? schema.maximum : undefined,
    step: numeric ? (schema.type === 'integer' ? 1 : 'any') : undefined,
    minlength: numeric ? undefined : schema.minLength,
    maxlength: numeric ? undefined : schema.maxLength,
    pattern: numeric ? undefined : htmlPattern(schema.pattern),
    autocomplete: 'off',
  });
  const write = (value) => {
    if (value === undefined) input.value = '';
    else if (numeric ? typeof value !== 'number' : typeof value !== 'string') return false;
    else {
      input.value = String(value);
      // A date input silently empties a value that is not a date: then the JSON does not fit this field.
      return input.value === String(value);
    }
    return true;
  };
  write(schema.default);
  const read = () => {
    if (input.value === '' && (numeric || !required)) return undefined;
    return numeric ? Number(input.value) : input.value;
  };
  return { control: input, read, write };
}

function enumControl(schema, common, required) {
  const values = schema.enum;
  // An optional enum can be left out: its empty choice omits the key.
  const select = h(
    'select',
    { ...common, required },
    required ? null : h('option', { value: '' }, '—'),
    values.map((v, i) => h('option', { value: String(i) }, String(v))),
  );
  const write = (value) => {
    const index = values.indexOf(value);
    if (value !== undefined && index < 0) return false;
    select.value = index < 0 ? (required ? '0' : '') : String(index);
    return true;
  };
  write(schema.default);
  return { control: select, read: () => (select.value === '' ? undefined : values[Number(select.value)]), write };
}

function booleanControl(schema, common, required) {
  const box = h('input', { ...common, type: 'checkbox' });
  // A checkbox cannot be "left out": an optional one without a default is sent only when ticked, so that a
  // default of the handler's own is not overridden; otherwise it is always sent, true or false.
  const always = required || schema.default !== undefined;
  const write = (value) => {
    if (value !== undefined && typeof value !== 'boolean') return false;
    box.checked = value ?? schema.default ?? false;
    return true;
  };
  write(schema.default);
  return { control: box, read: () => (box.checked ? true : always ? false : undefined), write };
}

/** The form's fields as labelled controls, and the object they make. */
function fieldsForm(fields) {
  const controls = fields.map((field) => ({ field, ...control(field) }));
  const element = h(
    'fieldset',
    { className: 'schema-form' },
    h('legend', {}, 'Input'),
    controls.map(({ field, control: input }) =>
      h(
        'label',
        { className: input.type === 'checkbox' ? 'check' : undefined },
        h('span', {}, field.schema.title ?? field.name, field.required ? h('span', { className: 'required' }, ' (required)') : null),
        input,
        field.schema.description ? h('span', { className: 'muted' }, field.schema.description) : null,
      ),
    ),
  );
  const value = () => {
    const object = {};
    for (const { field, read } of controls) {
      const v = read();
      if (v !== undefined) object[field.name] = v;
    }
    return object;
  };
  // Whether `object` fits the fields (no unknown key, right types); the fields are filled only when it does.
  const setValue = (object) => {
    if (!object || typeof object !== 'object' || Array.isArray(object)) return false;
    if (Object.keys(object).some((key) => !fields.some((f) => f.name === key))) return false;
    const before = value();
    if (controls.every(({ field, write }) => write(object[field.name]))) return true;
    for (const { field, write } of controls) write(before[field.name]);
    return false;
  };
  return { element, value, setValue };
}

/**
 * The input editor for a kind's schema: { element, value() } where value() throws a SyntaxError for raw JSON
 * that does not parse. A form with a Raw JSON toggle when the schema allows one, else the textarea alone.
 */
export function inputEditor(schema) {
  const textarea = h('textarea', { name: 'input', rows: 3, spellcheck: 'false' }, '{}');
  const raw = h('label', { className: 'raw-input' }, 'Input (JSON)', textarea);
  const fields = formFields(schema);
  if (!fields) return { element: raw, value: () => JSON.parse(textarea.value || 'null') };
  const form = fieldsForm(fields);
  const note = h('p', { className: 'error', role: 'alert' });
  const toggle = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Raw JSON');
  const showRaw = (on) => {
    toggle.setAttribute('aria-pressed', String(on));
    // A disabled fieldset's fields are out of the browser's constraint validation, which would otherwise block
    // the submit on a field that cannot be seen.
    form.element.hidden = on;
    form.element.disabled = on;
    raw.hidden = !on;
  };
  toggle.addEventListener('click', () => {
    fill(note);
    if (raw.hidden) {
      textarea.value = JSON.stringify(form.value(), null, 2);
      return showRaw(true);
    }
    let parsed;
    try {
      parsed = JSON.parse(textarea.value || 'null');
    } catch (error) {
      return fill(note, `The input is not JSON: ${error.message}`);
    }
    if (!form.setValue(parsed)) return fill(note, 'This JSON does not fit the form’s fields; it stays as raw JSON.');
    showRaw(false);
  });
  showRaw(false);
  const element = h('div', { className: 'input-editor' }, form.element, raw, h('div', { className: 'row' }, toggle), note);
  return { element, value: () => (raw.hidden ? form.value() : JSON.parse(textarea.value || 'null')) };
}
