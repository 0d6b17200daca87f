# Databricks notebook source
print("nested")
