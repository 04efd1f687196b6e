import { z } from 'zod';
import { invalidAnswers, type AnswerIssue } from './errors.ts';

/**
 * Survey questions (stored as JSON in an immutable template version) and the rules an answer must follow.
 * A version has at most one NPS and one CSAT question: they are the response's headline scores in the metrics.
 */
export const QUESTION_KINDS = ['NPS', 'CSAT', 'SINGLE_CHOICE', 'MULTIPLE_CHOICE', 'FREE_TEXT'] as const;
export type QuestionKind = (typeof QUESTION_KINDS)[number];

export const SCORE_RANGE = { NPS: [0, 10], CSAT: [1, 5] } as const;
const DEFAULT_MAX_LENGTH = 1000;

export interface Choice {
  value: string;
  label: string;
}

export interface Question {
  key: string;
  kind: QuestionKind;
  prompt: string;
  required: boolean;
  options: Choice[];
  /** MULTIPLE_CHOICE: most choices one answer may pick (null: all of them). */
  maxSelections: number | null;
  /** FREE_TEXT: longest answer in characters. */
  maxLength: number | null;
}

export interface Answer {
  questionKey: string;
  kind: QuestionKind;
  score?: number;
  choices?: string[];
  text?: string;
}

export interface AnswerInput {
  questionKey: string;
  score?: number | null;
  choices?: readonly string[] | null;
  text?: string | null;
}

const choiceSchema = z.object({
  value: z.string().trim().regex(/^[A-Za-z0-9_-]{1,40}$/, 'Choice values are 1–40 letters, digits, _ or -'),
  label: z.string().trim().min(1).max(200),
});

const questionSchema = z
  .object({
    key: z.string().trim().regex(/^[a-z][a-z0-9_]{0,39}$/, 'Question keys are 1–40 lower-case letters, digits or _, starting with a letter'),
    kind: z.enum(QUESTION_KINDS),
    prompt: z.string().trim().min(1).max(500),
    required: z.boolean().nullish().transform((v) => v ?? true),
    options: z.array(choiceSchema).max(20).nullish().transform((v) => v ?? []),
    maxSelections: z.number().int().min(1).max(20).nullish().transform((v) => v ?? null),
    maxLength: z.number().int().min(1).max(5000).nullish().transform((v) => v ?? null),
  })
  .superRefine((q, ctx) => {
    const choice = q.kind === 'SINGLE_CHOICE' || q.kind === 'MULTIPLE_CHOICE';
    if (choice && q.options.length < 2) ctx.addIssue({ code: 'custom', path: ['options'], message: 'A choice question needs at least 2 options' });
    if (!choice && q.options.length) ctx.addIssue({ code: 'custom', path: ['options'], message: `${q.kind} questions take no options` });
    if (new Set(q.options.map((o) => o.value)).size !== q.options.length) {
      ctx.addIssue({ code: 'custom', path: ['options'], message: 'Option values must be unique' });
    }
    if (q.maxSelections !== null && q.kind !== 'MULTIPLE_CHOICE') {
      ctx.addIssue({ code: 'custom', path: ['maxSelections'], message: 'Only MULTIPLE_CHOICE questions take maxSelections' });
    }
    if (q.maxSelections !== null && q.maxSelections > q.options.length) {
      ctx.addIssue({ code: 'custom', path: ['maxSelections'], message: 'maxSelections is more than the options' });
    }
    if (q.maxLength !== null && q.kind !== 'FREE_TEXT') ctx.addIssue({ code: 'custom', path: ['maxLength'], message: 'Only FREE_TEXT questions take maxLength' });
  })
  .transform((q): Question => ({ ...q, maxLength: q.kind === 'FREE_TEXT' ? (q.maxLength ?? DEFAULT_MAX_LENGTH) : null }));

export const questionsSchema = z
  .array(questionSchema)
  .min(1, 'A survey needs at least one question')
  .max(30)
  .superRefine((questions, ctx) => {
    const keys = new Set<string>();
    questions.forEach((q, index) => {
      if (keys.has(q.key)) ctx.addIssue({ code: 'custom', path: [index, 'key'], message: `Duplicate question key ${q.key}` });
      keys.add(q.key);
    });
    for (const kind of ['NPS', 'CSAT'] as const) {
      if (questions.filter((q) => q.kind === kind).length > 1) ctx.addIssue({ code: 'custom', path: [], message: `At most one ${kind} question per survey` });
    }
  });

/** The questions of a stored version (already validated when the version was written). */
export function storedQuestions(json: unknown): Question[] {
  return json as Question[];
}

/**
 * Checks answers against a version's questions and returns them normalized, or throws one
 * InvalidSurveyAnswerError per problem. Unanswered optional questions are simply left out.
 */
export function validateAnswers(questions: Question[], answers: readonly AnswerInput[]): { answers: Answer[]; nps: number | null; csat: number | null } {
  const issues: AnswerIssue[] = [];
  const byKey = new Map(questions.map((q) => [q.key, q]));
  const seen = new Set<string>();
  const normalized: Answer[] = [];
  answers.forEach((input, index) => {
    const field = ['input', 'answers', String(index)];
    const issue = (code: string, message: string, at: string[] = field) => issues.push({ code, message, questionKey: input.questionKey, field: at });
    const question = byKey.get(input.questionKey);
    if (!question) return issue('UNKNOWN_QUESTION', `The survey has no question ${JSON.stringify(input.questionKey)}`, [...field, 'questionKey']);
    if (seen.has(question.key)) return issue('DUPLICATE_ANSWER', `Question ${question.key} is answered twice`);
    seen.add(question.key);
    const hasScore = input.score !== null && input.score !== undefined;
    const hasChoices = input.choices !== null && input.choices !== undefined;
    const hasText = input.text !== null && input.text !== undefined;
    switch (question.kind) {
      case 'NPS':
      case 'CSAT': {
        if (!hasScore || hasChoices || hasText) return issue('WRONG_ANSWER_TYPE', `Question ${question.key} takes a score only`);
        const [min, max] = SCORE_RANGE[question.kind];
        if (!Number.isInteger(input.score) || input.score! < min || input.score! > max) {
          return issue('SCORE_OUT_OF_RANGE', `${question.kind} scores are whole numbers from ${min} to ${max}`, [...field, 'score']);
        }
        normalized.push({ questionKey: question.key, kind: question.kind, score: input.score! });
        return;
      }
      case 'SINGLE_CHOICE':
      case 'MULTIPLE_CHOICE': {
        if (!hasChoices || hasScore || hasText) return issue('WRONG_ANSWER_TYPE', `Question ${question.key} takes choices only`);
        const choices = [...input.choices!];
        const allowed = new Set(question.options.map((o) => o.value));
        const unknown = choices.filter((c) => !allowed.has(c));
        if (unknown.length) return issue('UNKNOWN_CHOICE', `Not an option of ${question.key}: ${unknown.join(', ')}`, [...field, 'choices']);
        if (new Set(choices).size !== choices.length) return issue('DUPLICATE_ANSWER', `A choice is picked twice in ${question.key}`, [...field, 'choices']);
        const most = question.kind === 'SINGLE_CHOICE' ? 1 : (question.maxSelections ?? question.options.length);
        if (choices.length === 0) return issue('MISSING_ANSWER', `Pick at least one option of ${question.key}`, [...field, 'choices']);
        if (choices.length > most) return issue('TOO_MANY_CHOICES', `Pick at most ${most} option(s) of ${question.key}`, [...field, 'choices']);
        // Stored in the question's own order, so equal answers look equal.
        const order = question.options.map((o) => o.value);
        normalized.push({ questionKey: question.key, kind: question.kind, choices: choices.sort((a, b) => order.indexOf(a) - order.indexOf(b)) });
        return;
      }
      case 'FREE_TEXT': {
        if (!hasText || hasScore || hasChoices) return issue('WRONG_ANSWER_TYPE', `Question ${question.key} takes text only`);
        const text = input.text!.trim();
        if (!text) return issue('EMPTY_TEXT', `The answer to ${question.key} is empty (leave an optional question out instead)`, [...field, 'text']);
        if (text.length > (question.maxLength ?? DEFAULT_MAX_LENGTH)) {
          return issue('TEXT_TOO_LONG', `Answers to ${question.key} are at most ${question.maxLength} characters`, [...field, 'text']);
        }
        normalized.push({ questionKey: question.key, kind: question.kind, text });
        return;
      }
    }
  });
  for (const question of questions) {
    if (question.required && !seen.has(question.key)) {
      issues.push({ code: 'MISSING_ANSWER', message: `Question ${question.key} must be answered`, questionKey: question.key, field: ['input', 'answers'] });
    }
  }
  if (issues.length) throw invalidAnswers(issues);
  const scoreOf = (kind: QuestionKind) => normalized.find((a) => a.kind === kind)?.score ?? null;
  return { answers: normalized, nps: scoreOf('NPS'), csat: scoreOf('CSAT') };
}

/** The post-visit survey a chain starts with (seeded for demo chains). */
export const DEFAULT_POST_VISIT_QUESTIONS: Question[] = questionsSchema.parse([
  { key: 'recommend', kind: 'NPS', prompt: '您有多大可能向朋友推荐我们？ How likely are you to recommend us to a friend? (0–10)' },
  { key: 'satisfaction', kind: 'CSAT', prompt: '您对本次服务满意吗？ How satisfied are you with today\'s service? (1–5)' },
  {
    key: 'highlights',
    kind: 'MULTIPLE_CHOICE',
    prompt: '哪些方面让您满意？ What did you like?',
    required: false,
    options: [
      { value: 'technique', label: '手法专业 Skilled technique' },
      { value: 'attitude', label: '服务态度 Friendly staff' },
      { value: 'environment', label: '环境卫生 Clean, calm rooms' },
      { value: 'punctuality', label: '准时 On time' },
      { value: 'value', label: '物有所值 Good value' },
    ],
  },
  {
    key: 'rebook',
    kind: 'SINGLE_CHOICE',
    prompt: '您会再次预约吗？ Will you book again?',
    required: false,
    options: [
      { value: 'yes', label: '会 Yes' },
      { value: 'maybe', label: '也许 Maybe' },
      { value: 'no', label: '不会 No' },
    ],
  },
  { key: 'comment', kind: 'FREE_TEXT', prompt: '还有什么想告诉我们的？ Anything else you would like to tell us?', required: false, maxLength: 1000 },
]);

export const DEFAULT_PERIODIC_QUESTIONS: Question[] = questionsSchema.parse([
  { key: 'recommend', kind: 'NPS', prompt: '您有多大可能向朋友推荐丽美？ How likely are you to recommend us? (0–10)' },
  { key: 'satisfaction', kind: 'CSAT', prompt: '过去三个月您对我们总体满意吗？ Overall, how satisfied were you these past months? (1–5)' },
  { key: 'improve', kind: 'FREE_TEXT', prompt: '我们可以改进什么？ What could we do better?', required: false },
]);
