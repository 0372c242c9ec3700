<?php
/* plexcache-r: the Settings form's controls, built from the schema (include/schema.json, the output of
 * `plexcache-r config schema --json`). Type, bounds, step, options and their words, secrecy and the label
 * come from there, so the form cannot offer what validation refuses; the page chooses only the layout
 * (which control, a placeholder, a hint, buttons beside it). */
require_once __DIR__.'/helpers.php';

function pcr_e($text): string { return htmlspecialchars((string)$text, ENT_QUOTES); }

/** The schema entry of a setting; an unknown key is a mistake in the page, shown loudly. */
function pcr_key(string $key): array {
  $entry = pcr_schema()['keys'][$key] ?? null;
  if ($entry === null) throw new InvalidArgumentException("no setting $key in the schema");
  return $entry;
}

function pcr_field_id(string $key): string { return 'pcr-f-'.str_replace(['.', '[]'], ['-', ''], $key); }

function pcr_attrs(array $attrs): string {
  $out = '';
  foreach ($attrs as $name => $value) {
    if ($value === null || $value === false) continue;
    $out .= ' '.$name.($value === true ? '' : '="'.pcr_e($value).'"');
  }
  return $out;
}

/** The words a choice shows for a value: the schema's, else Yes/No for true/false, else the value. */
function pcr_option_words(array $entry, string $value): string {
  return $entry['words'][$value] ?? (['true' => 'Yes', 'false' => 'No'][$value] ?? $value);
}

/**
 * The control of one setting. $o: as (checkbox for a bool; checklist or csv for a list), input (the
 * HTML type of a text field, e.g. url), placeholder, narrow, id, label (aria-label, for a control with
 * no row label of its own), required.
 */
function pcr_control(string $key, array $o = []): string {
  $e = pcr_key($key);
  $id = $o['id'] ?? pcr_field_id($key);
  $named = pcr_field_id($key).'-label';   // the row's label, for a group of controls
  $common = ['id' => $id, 'data-key' => $key, 'class' => !empty($o['narrow']) ? 'narrow' : null,
             'aria-label' => $o['label'] ?? null];
  switch ($e['type']) {
    case 'bool':
      if (($o['as'] ?? '') === 'checkbox') return '<input'.pcr_attrs(['type' => 'checkbox'] + $common + ['data-type' => 'bool']).'>';
      // fall through: a bool is a choice of two
    case 'choice':
      $opts = '';
      foreach ($e['options'] as $v) $opts .= '<option value="'.pcr_e($v).'">'.pcr_e(pcr_option_words($e, $v)).'</option>';
      return '<select'.pcr_attrs($common + ['data-type' => $e['type'] === 'bool' ? 'bool' : 'str']).'>'.$opts.'</select>';
    case 'int':
    case 'float':
      return '<input'.pcr_attrs(['type' => 'number'] + $common + ['data-type' => $e['type'], 'min' => $e['min'],
        'max' => $e['max'], 'step' => $e['step'] ?? 'any']).'>';
    case 'list':
      if (($o['as'] ?? '') === 'csv') {
        return '<input'.pcr_attrs(['type' => 'text'] + $common + ['data-type' => 'csv', 'placeholder' => $o['placeholder'] ?? null]).'>';
      }
      return '<div'.pcr_attrs(['class' => 'pcr-checklist'] + $common + ['data-type' => 'checklist', 'role' => 'group',
        'aria-labelledby' => $named]).'></div>';
    case 'multi':
      return '<div'.pcr_attrs(['class' => 'pcr-checklist'] + $common + ['data-type' => 'multi', 'role' => 'group',
        'aria-labelledby' => $named]).'></div>';
    case 'rows':
      $head = '';
      foreach (pcr_schema()['keys'] as $k => $row) {
        if (strpos($k, $key.'[].') === 0) $head .= '<td>'.pcr_e($row['label']).'</td>';
      }
      return '<table'.pcr_attrs(['class' => 'unraid pcr-rows', 'id' => $id, 'data-key' => $key,
        'data-type' => 'rows', 'aria-labelledby' => $named]).'><thead><tr>'.$head.'<td></td></tr></thead><tbody></tbody></table>';
    default:   // str, size
      $secret = !empty($e['secret']);
      return '<input'.pcr_attrs(['type' => $secret ? 'password' : ($o['input'] ?? 'text')] + $common + [
        'data-type' => $secret ? 'secret' : 'str', 'placeholder' => $o['placeholder'] ?? null,
        'autocomplete' => $secret ? 'new-password' : null, 'required' => !empty($o['required'])]).'>';
  }
}

/** One row of the form: the setting's label (a <label> its control is named by) and its control, with a
 * hint and buttons beside it ($o['hint'], $o['after']: markup written by the page) and the row's class. */
function pcr_field(string $key, array $o = []): string {
  $e = pcr_key($key);
  $id = pcr_field_id($key);
  $label = in_array($e['type'], ['list', 'multi', 'rows'], true) && ($o['as'] ?? '') !== 'csv'
    ? '<span id="'.$id.'-label">'.pcr_e($e['label']).'</span>'
    : '<label for="'.pcr_e($o['id'] ?? $id).'" id="'.$id.'-label">'.pcr_e($e['label']).'</label>';
  $control = pcr_control($key, $o);
  $hint = isset($o['hint']) ? ' <span class="grey-text">'.pcr_e($o['hint']).'</span>' : '';
  $inner = ($hint || isset($o['line'])) ? '<span class="pcr-line">'.$control.$hint.($o['line'] ?? '').'</span>' : $control;
  return '<dl'.pcr_attrs(['class' => $o['dl'] ?? null]).'><dt>'.$label.':</dt><dd>'.$inner.($o['after'] ?? '').'</dd></dl>';
}
