/**
 * XML in and out. Responses are built by a small writer (S3's documents are simple and we want exact
 * element order and escaping); request bodies are parsed with fast-xml-parser.
 */
import { XMLParser } from "fast-xml-parser";
import { S3Error } from "./errors.js";

export type XmlValue = string | number | boolean | null | undefined | Date | XmlObject | XmlValue[];
export interface XmlObject {
  [name: string]: XmlValue;
}

export const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

// XML 1.0 cannot carry most control characters even as references; S3 escapes the ones it can.
export function escapeXml(s: string): string {
  return s.replace(/[&<>"'\r\n\t]/g, (c) => {
    switch (c) {
      case "&":
        return "&amp;";
      case "<":
        return "&lt;";
      case ">":
        return "&gt;";
      case '"':
        return "&quot;";
      case "'":
        return "&apos;";
      default:
        return `&#${c.charCodeAt(0)};`;
    }
  });
}

function writeValue(out: string[], name: string, value: XmlValue): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    for (const v of value) writeValue(out, name, v);
    return;
  }
  if (value instanceof Date) {
    out.push(`<${name}>${value.toISOString()}</${name}>`);
  } else if (typeof value === "object") {
    out.push(`<${name}>`);
    for (const [k, v] of Object.entries(value)) writeValue(out, k, v);
    out.push(`</${name}>`);
  } else {
    out.push(`<${name}>${escapeXml(String(value))}</${name}>`);
  }
}

/** A whole document. Error documents carry no namespace in S3; every other response does. */
export function xmlDocument(
  root: string,
  body: XmlObject,
  ns: string | null = root === "Error" ? null : S3_NS,
) {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  out.push(ns ? `<${root} xmlns="${ns}">` : `<${root}>`);
  for (const [k, v] of Object.entries(body)) writeValue(out, k, v);
  out.push(`</${root}>`);
  return out.join("");
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  // Keys and ETags must stay strings exactly as sent: no number parsing, no trimming.
  parseTagValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  processEntities: true,
  htmlEntities: true,
});

export type Parsed = { [name: string]: unknown };

/** Parses a request body; anything that is not well-formed XML with the expected root is MalformedXML. */
export function parseXml(body: string, root: string): Parsed {
  let doc: Parsed;
  try {
    doc = parser.parse(body, true) as Parsed;
  } catch {
    throw new S3Error("MalformedXML");
  }
  const top = doc[root];
  if (top === undefined) throw new S3Error("MalformedXML");
  if (typeof top === "string") return {};
  if (typeof top !== "object" || top === null) throw new S3Error("MalformedXML");
  return top as Parsed;
}

/** Children named `name` as a list (a single child comes back from the parser as a bare value). */
export function children(node: Parsed, name: string): unknown[] {
  const v = node[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** The text of a child element, or undefined. Elements with only whitespace inside are objects to the parser. */
export function text(node: Parsed, name: string): string | undefined {
  const v = node[name];
  if (v === undefined) return undefined;
  if (typeof v === "string") return v;
  if (Array.isArray(v)) throw new S3Error("MalformedXML");
  if (typeof v === "object" && v !== null) {
    const t = (v as Parsed)["#text"];
    return typeof t === "string" ? t : "";
  }
  return String(v);
}

export function asNode(v: unknown): Parsed {
  if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Parsed;
  if (typeof v === "string" && v.trim() === "") return {};
  throw new S3Error("MalformedXML");
}
