import { warmSuite } from "./warm-suite.js";

warmSuite("crun");
