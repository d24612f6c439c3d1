import { runtimeSuite } from "./suite.js";

runtimeSuite("runc");
