import express, { type Router } from "express";

// TEMPORARY placeholder while the OpenAPI document is being written.
export function createDocsRouter(): Router {
  return express.Router();
}
