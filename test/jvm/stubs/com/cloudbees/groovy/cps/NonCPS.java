package com.cloudbees.groovy.cps;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Stand-in for groovy-cps' {@code @NonCPS} (Jenkins provides the real one; Maven Central does not
 * carry groovy-cps). Outside Jenkins nothing is CPS-transformed, so the marker has no effect here.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface NonCPS {
}
